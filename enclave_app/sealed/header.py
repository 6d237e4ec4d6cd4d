"""The sealed header (``header.json``) and the per-file AES-256-GCM associated data: docs/sealed-models.md §2-4.

The header is one JSON object, read strictly: UTF-8, at most ``MAX_HEADER_BYTES``, no duplicate keys, exactly the
documented keys with the documented types. Every file's AAD holds the SHA-256 of the header bytes as stored, so
changing any byte of the header makes every file fail its tag.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

from enclave_app.sealed.errors import SealedModelError

FORMAT = "trustdial-sealed-model/1"
CIPHER = "AES-256-GCM"
HEADER_NAME = "header.json"
MAX_HEADER_BYTES = 1024 * 1024
MAX_FILES = 4096
NONCE_BYTES = 12
TAG_BYTES = 16
DATA_KEY_BYTES = 32
AAD_PREFIX = FORMAT.encode() + b"\x00"
#: the KMS encryption context key naming the model's plaintext SHA-256 (visible in CloudTrail)
CONTEXT_MODEL_KEY = "trustdial:model-sha256"
HEX64 = re.compile(r"[0-9a-f]{64}")
HEX24 = re.compile(r"[0-9a-f]{24}")
NAME_PART = re.compile(r"[A-Za-z0-9._+-]{1,255}")


class KeyScheme(StrEnum):
    """How the data key is wrapped."""

    AWS_KMS = "aws-kms"  # KMS GenerateDataKey (SYMMETRIC_DEFAULT); unwrapped by Decrypt with a Recipient
    RSA_OAEP_SHA256 = "rsa-oaep-sha256"  # development: RSA-OAEP-SHA-256 to a local public key


@dataclass(frozen=True)
class SealedFile:
    name: str
    size: int
    sha256: bytes
    nonce: bytes


@dataclass(frozen=True)
class WrappedKey:
    scheme: KeyScheme
    key_id: str
    encrypted_data_key: bytes
    encryption_context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SealedHeader:
    model: str
    key: WrappedKey
    files: tuple[SealedFile, ...]

    def file(self, name: str) -> SealedFile:
        for entry in self.files:
            if entry.name == name:
                return entry
        raise SealedModelError("SEALED_HEADER_INVALID", f"the header lists no file {name!r}")

    @property
    def model_sha256(self) -> bytes:
        return self.file(self.model).sha256


def blob_name(index: int) -> str:
    """The ciphertext file of the header's ``index``-th entry."""
    return f"{index:04d}.sealed"


def file_aad(header_sha256: bytes, index: int, name: str) -> bytes:
    """``FORMAT || 0x00 || SHA-256(header bytes) || uint32_be(index) || UTF-8 name``."""
    return AAD_PREFIX + header_sha256 + index.to_bytes(4, "big") + name.encode()


def check_name(name: object) -> str:
    """A relative POSIX path of plain components (no ``.``/``..``, no empty parts, no backslashes)."""
    if not isinstance(name, str) or not name or len(name) > 1024:
        raise SealedModelError("SEALED_HEADER_INVALID", f"expected a file name, found {name!r:.80}")
    parts = name.split("/")
    if any(NAME_PART.fullmatch(part) is None or part in (".", "..") for part in parts):
        raise SealedModelError("SEALED_HEADER_INVALID", f"file name {name!r:.80} is not a plain relative path")
    return str(PurePosixPath(name))


def encode_header(header: SealedHeader) -> bytes:
    """The canonical bytes (sorted keys, no insignificant whitespace, a final newline)."""
    document = {
        "format": FORMAT,
        "cipher": CIPHER,
        "model": header.model,
        "key": {
            "scheme": str(header.key.scheme),
            "key_id": header.key.key_id,
            "encrypted_data_key": base64.b64encode(header.key.encrypted_data_key).decode(),
            "encryption_context": dict(header.key.encryption_context),
        },
        "files": [
            {"name": f.name, "size": f.size, "sha256": f.sha256.hex(), "nonce": f.nonce.hex()} for f in header.files
        ],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _invalid(reason: str) -> SealedModelError:
    return SealedModelError("SEALED_HEADER_INVALID", reason)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _invalid(f"duplicate key {key!r:.80} in the header")
        result[key] = value
    return result


def _refuse_constant(name: str) -> None:
    raise _invalid(f"the header holds {name}, which JSON does not allow")


def _object(value: object, keys: set[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != keys:
        found = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise _invalid(f"expected {what} with exactly the keys {sorted(keys)}, found {found}")
    return value


def _string(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(f"expected {what} to be a non-empty string")
    return value


def _hex(value: object, pattern: re.Pattern[str], what: str) -> bytes:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise _invalid(f"expected {what} in lowercase hex, found {value!r:.80}")
    return bytes.fromhex(value)


def parse_header(raw: bytes) -> SealedHeader:
    """Parse ``header.json`` strictly; :class:`SealedModelError` ``SEALED_HEADER_INVALID`` on any deviation."""
    if len(raw) > MAX_HEADER_BYTES:
        raise _invalid(f"expected at most {MAX_HEADER_BYTES} bytes of header, found {len(raw)}")
    try:
        document = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise _invalid(f"the header is not UTF-8 JSON: {err}") from err
    top = _object(document, {"format", "cipher", "model", "key", "files"}, "the header")
    if top["format"] != FORMAT:
        raise SealedModelError("SEALED_FORMAT_UNSUPPORTED", f"expected format {FORMAT!r}, found {top['format']!r:.80}")
    if top["cipher"] != CIPHER:
        raise SealedModelError("SEALED_FORMAT_UNSUPPORTED", f"expected cipher {CIPHER!r}, found {top['cipher']!r:.80}")
    key = _object(top["key"], {"scheme", "key_id", "encrypted_data_key", "encryption_context"}, "the key")
    try:
        scheme = KeyScheme(key["scheme"])
    except ValueError as err:
        raise _invalid(f"expected key.scheme in {[str(s) for s in KeyScheme]}, found {key['scheme']!r:.80}") from err
    try:
        wrapped = base64.b64decode(_string(key["encrypted_data_key"], "key.encrypted_data_key"), validate=True)
    except binascii.Error as err:
        raise _invalid(f"key.encrypted_data_key is not base64: {err}") from err
    context = key["encryption_context"]
    if not isinstance(context, dict) or not all(isinstance(v, str) for v in context.values()):
        raise _invalid("expected key.encryption_context to map strings to strings")
    files = top["files"]
    if not isinstance(files, list) or not 1 <= len(files) <= MAX_FILES:
        raise _invalid(f"expected 1 to {MAX_FILES} files")
    entries = []
    for item in files:
        entry = _object(item, {"name", "size", "sha256", "nonce"}, "a file entry")
        size = entry["size"]
        if type(size) is not int or not 0 <= size < 1 << 40:
            raise _invalid(f"expected a file size in bytes, found {size!r:.80}")
        entries.append(
            SealedFile(
                name=check_name(entry["name"]),
                size=size,
                sha256=_hex(entry["sha256"], HEX64, "a file sha256"),
                nonce=_hex(entry["nonce"], HEX24, "a file nonce"),
            )
        )
    names = [entry.name for entry in entries]
    if len(set(names)) != len(names):
        raise _invalid("the header lists a file name twice")
    if len({entry.nonce for entry in entries}) != len(entries):
        raise _invalid("two files share a nonce")
    header = SealedHeader(
        model=check_name(top["model"]),
        key=WrappedKey(scheme, _string(key["key_id"], "key.key_id"), wrapped, dict(context)),
        files=tuple(entries),
    )
    header.file(header.model)
    return header


def header_digest(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()
