"""The one strict, bounded CBOR (RFC 8949) reader for everything untrusted the verifier decodes:
attestation documents, receipts and their seals, signed manifests, EIF signature sections.

Only what signed evidence needs: integers (major types 0/1, so at most 64 bits: bignum tags
2/3 are not accepted unless a format names them), byte and text strings of definite length,
arrays and maps of definite or indefinite length, ``false``/``true``/``null``, and only the tags
the caller's format allows (``tags``; none by default). In particular shared-reference tags
28/29 are never resolved: nothing decoded here can alias, so the decoded value is never larger
than its input. Everything else (floats, ``undefined``, other simple values, chunked strings,
any other tag: ``CBOR_UNSUPPORTED``) is refused, and so are duplicate map keys, map keys other than integers and
strings, trailing bytes, more than ``max_bytes`` of input, nesting deeper than :data:`MAX_DEPTH`
and more than ``max_items`` data items. Byte strings are returned exactly as they appear on the
wire, so a signature can be checked over the received bytes without ever re-encoding anything.

Error reasons name offsets, lengths and types, never the decoded values themselves.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import TypeAlias

from trustdial_verifier.errors import VerificationError

MAX_DEPTH = 16
MAX_ITEMS = 4096
#: Default cap on the input: the largest evidence the verifier reads as one CBOR item is 1 MiB.
MAX_BYTES = 1 << 20
#: Tag 18: COSE_Sign1 (RFC 9052). The only tag any trustdial format allows.
TAG_COSE_SIGN1 = 18
NO_TAGS: frozenset[int] = frozenset()

MAJOR_UNSIGNED = 0
MAJOR_NEGATIVE = 1
MAJOR_BYTES = 2
MAJOR_TEXT = 3
MAJOR_ARRAY = 4
MAJOR_MAP = 5
MAJOR_TAG = 6
MAJOR_SIMPLE = 7

INFO_INDEFINITE = 31
BREAK = 0xFF
SIMPLE_FALSE = 20
SIMPLE_TRUE = 21
SIMPLE_NULL = 22
#: Additional information of a half, single and double float (major type 7), and how to read each.
FLOAT_FORMATS = {25: ">e", 26: ">f", 27: ">d"}


class CborError(VerificationError):
    """The bytes are not CBOR this reader accepts. Codes: ``CBOR_MALFORMED``,
    ``CBOR_UNSUPPORTED`` (including a tag the format does not allow), ``CBOR_DUPLICATE_KEY``,
    ``CBOR_TRAILING_BYTES``, ``CBOR_TOO_DEEP``,
    ``CBOR_TOO_LARGE``, ``CBOR_NON_FINITE`` (a NaN or infinite float where floats are allowed)."""


@dataclass(frozen=True)
class CborTag:
    """A tagged data item (major type 6)."""

    tag: int
    value: CborValue


CborKey: TypeAlias = int | bytes | str
CborValue: TypeAlias = (
    int | float | bytes | str | bool | list["CborValue"] | dict[CborKey, "CborValue"] | CborTag | None
)


def decode(
    data: bytes,
    *,
    tags: frozenset[int] = NO_TAGS,
    max_bytes: int = MAX_BYTES,
    max_items: int = MAX_ITEMS,
    floats: bool = False,
) -> CborValue:
    """Decode exactly one data item that spans all of ``data``; raise :class:`CborError` otherwise.

    ``tags``: the tag numbers the format allows (any other tag is ``CBOR_UNSUPPORTED``); ``max_bytes``: the
    largest input accepted (checked before anything is read); ``max_items``: the most data items; ``floats``:
    whether the format carries floats (half, single, double; finite only: NaN and infinities are
    ``CBOR_NON_FINITE``). Signed evidence carries none; the enclave's request frames do.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CborError("CBOR_MALFORMED", f"expected bytes to decode, found {type(data).__name__}")
    if len(data) > max_bytes:
        raise CborError("CBOR_TOO_LARGE", f"expected at most {max_bytes} bytes of CBOR, found {len(data)}")
    if type(data) is not bytes:
        data = bytes(data)
    end_of_input = len(data)
    offset = 0
    items = 0

    def truncated(needed: int) -> CborError:
        return CborError(
            "CBOR_MALFORMED", f"expected {needed} more bytes at offset {offset}, found only {end_of_input - offset}"
        )

    def item(depth: int) -> CborValue:
        # One function with local state: this runs for every data item of every document.
        nonlocal offset, items
        if depth > MAX_DEPTH:
            raise CborError("CBOR_TOO_DEEP", f"expected nesting of at most {MAX_DEPTH} levels, found deeper")
        items += 1
        if items > max_items:
            raise CborError("CBOR_TOO_DEEP", f"expected at most {max_items} data items, found more")
        start = offset
        if start >= end_of_input:
            raise CborError("CBOR_MALFORMED", f"expected a data item at offset {start}, found the end of input")
        initial = data[start]
        major, info = initial >> 5, initial & 0x1F
        offset = start + 1
        argument: int | None
        if info < 24:
            argument = info
        elif info <= 27:
            size = 1 << (info - 24)
            if offset + size > end_of_input:
                raise truncated(size)
            argument = int.from_bytes(data[offset : offset + size], "big")
            offset += size
        elif info == INFO_INDEFINITE:
            argument = None
        else:
            raise CborError("CBOR_MALFORMED", f"reserved additional information {info} at offset {start}")

        if major == MAJOR_BYTES or major == MAJOR_TEXT:
            if argument is None:
                raise CborError(
                    "CBOR_UNSUPPORTED", f"chunked (indefinite-length) string at offset {start} is not accepted"
                )
            if offset + argument > end_of_input:
                raise truncated(argument)
            raw = data[offset : offset + argument]
            offset += argument
            if major == MAJOR_BYTES:
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise CborError(
                    "CBOR_MALFORMED", f"text string at offset {start} is not UTF-8 (byte {err.start} of it)"
                ) from None
        if major == MAJOR_MAP:
            entries: dict[CborKey, CborValue] = {}
            if argument is not None and argument * 2 > end_of_input - offset:
                raise CborError(
                    "CBOR_MALFORMED", f"map at offset {start} declares {argument} entries but too few bytes remain"
                )
            remaining = argument
            while True:
                if remaining is None:
                    if offset >= end_of_input:
                        raise CborError("CBOR_MALFORMED", "indefinite-length map is not closed by a break byte")
                    if data[offset] == BREAK:
                        offset += 1
                        break
                elif remaining == 0:
                    break
                else:
                    remaining -= 1
                key_offset = offset
                key = item(depth + 1)
                if not isinstance(key, int | bytes | str) or isinstance(key, bool):
                    raise CborError("CBOR_UNSUPPORTED", f"map key at offset {key_offset} must be an integer or string")
                if key in entries:
                    raise CborError(
                        "CBOR_DUPLICATE_KEY",
                        f"expected unique keys in the map at offset {start}, found a repeat at offset {key_offset}",
                    )
                entries[key] = item(depth + 1)
            return entries
        if major == MAJOR_ARRAY:
            values: list[CborValue] = []
            if argument is None:
                while True:
                    if offset >= end_of_input:
                        raise CborError("CBOR_MALFORMED", "indefinite-length array is not closed by a break byte")
                    if data[offset] == BREAK:
                        offset += 1
                        return values
                    values.append(item(depth + 1))
            if argument > end_of_input - offset:
                raise CborError(
                    "CBOR_MALFORMED", f"array at offset {start} declares {argument} elements but too few bytes remain"
                )
            for _ in range(argument):
                values.append(item(depth + 1))
            return values
        if major == MAJOR_SIMPLE:
            if info == SIMPLE_FALSE:
                return False
            if info == SIMPLE_TRUE:
                return True
            if info == SIMPLE_NULL:
                return None
            if info == INFO_INDEFINITE:
                raise CborError("CBOR_MALFORMED", f"unexpected break byte at offset {start}")
            if floats and info in FLOAT_FORMATS and argument is not None:
                fmt = FLOAT_FORMATS[info]
                (number,) = struct.unpack(fmt, argument.to_bytes(struct.calcsize(fmt), "big"))
                if not math.isfinite(number):
                    raise CborError(
                        "CBOR_NON_FINITE", f"expected a finite float at offset {start}, found NaN or infinity"
                    )
                return float(number)
            raise CborError(
                "CBOR_UNSUPPORTED", f"simple value or float (additional information {info}) at offset {start}"
            )
        if argument is None:
            raise CborError("CBOR_UNSUPPORTED", f"indefinite length with major type {major} at offset {start}")
        if major == MAJOR_UNSIGNED:
            return argument
        if major == MAJOR_NEGATIVE:
            return -1 - argument
        if argument not in tags:  # MAJOR_TAG
            allowed = sorted(tags) or "none"
            raise CborError("CBOR_UNSUPPORTED", f"expected tags {allowed} only, found tag {argument} at offset {start}")
        return CborTag(argument, item(depth + 1))

    value = item(0)
    if offset != end_of_input:
        raise CborError(
            "CBOR_TRAILING_BYTES",
            f"expected one CBOR data item spanning all {end_of_input} bytes, found {end_of_input - offset} "
            f"trailing bytes after offset {offset}",
        )
    return value
