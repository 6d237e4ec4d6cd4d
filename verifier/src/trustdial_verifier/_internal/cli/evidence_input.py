"""Reading evidence given on the command line: a file or ``-`` (stdin), as raw bytes, hex or base64 text."""

from __future__ import annotations

import base64
import binascii
import re
import string
import sys
from pathlib import Path

from trustdial_verifier.errors import InputError, describe_value

MAX_EVIDENCE_BYTES = 1 << 20
_HEX_DIGITS = frozenset(string.hexdigits)


def read_evidence(location: str) -> bytes:
    """Return the evidence bytes at ``location`` (a path, or ``-`` for stdin), decoding hex or base64 text.

    Text that is entirely hex digits is hex; otherwise ASCII text that is valid base64 (standard or
    URL-safe alphabet, whitespace ignored) is base64; anything else is taken as the raw bytes.
    """
    if location == "-":
        data = sys.stdin.buffer.read(MAX_EVIDENCE_BYTES + 1)
    else:
        path = Path(location)
        if not path.is_file():
            raise InputError("FILE_NOT_FOUND", f"expected a readable file at {location!r}, found none")
        with path.open("rb") as handle:
            data = handle.read(MAX_EVIDENCE_BYTES + 1)
    if len(data) > MAX_EVIDENCE_BYTES:
        raise InputError("INPUT_TOO_LARGE", f"expected at most {MAX_EVIDENCE_BYTES} bytes of evidence")
    if not data.strip():
        raise InputError("EMPTY_INPUT", f"expected evidence bytes in {location!r}, found nothing")
    return decode_text_encodings(data)


def decode_text_encodings(data: bytes) -> bytes:
    try:
        text = "".join(data.decode("ascii").split())
    except UnicodeDecodeError:
        return data
    if text and len(text) % 2 == 0 and set(text) <= _HEX_DIGITS:
        return bytes.fromhex(text)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return data


PCR_INDEX_LIMIT = 32
_PCR_INDEX = re.compile(r"[0-9]{1,3}")


def parse_pcr_index(text: str, where: str) -> int:
    """A PCR index given by the caller: one or two ASCII digits, 0..31 (never ``int()`` of arbitrary text)."""
    stripped = text.strip() if isinstance(text, str) else text
    if not isinstance(stripped, str) or not _PCR_INDEX.fullmatch(stripped):
        raise InputError(
            "BAD_PCR", f"{where}: expected a PCR index of decimal digits, found {describe_value(text, 40)}"
        )
    index = int(stripped)
    if index >= PCR_INDEX_LIMIT:
        raise InputError("PCR_INDEX", f"{where}: expected PCR index 0-{PCR_INDEX_LIMIT - 1}, found {index}")
    return index


def parse_hex(name: str, value: str) -> bytes:
    """Parse a hex command-line value (optional ``0x`` prefix); raise :class:`InputError` if it is not hex."""
    text = value.removeprefix("0x").removeprefix("0X")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InputError("BAD_HEX", f"expected {name} as hex digits, found {describe_value(value, 40)}") from None
