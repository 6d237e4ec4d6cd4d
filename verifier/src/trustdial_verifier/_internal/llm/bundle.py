"""LLM model bundles: a directory the engine loads, and the manifest that names every file in it.

``bundle.json`` (docs/llm-receipts.md §2) lists every other file of the directory with its size and
SHA-256, plus a few text fields saying where the bundle came from. The **bundle digest** is SHA-256
over the deterministic CBOR encoding of the whole manifest; it is the model's identity in every
receipt (the statement's ``model``) and in the measurement manifest. Loading a bundle checks every
file against the manifest and refuses a file that is missing, changed or not listed, so the digest
names exactly what the engine reads.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2

from trustdial_verifier.errors import VerificationError

MANIFEST_NAME = "bundle.json"
BUNDLE_TYPE = "trustdial/llm-bundle"
BUNDLE_VERSION = 1
MAX_FILES = 256
MAX_MANIFEST_BYTES = 1 << 20


class BundleError(VerificationError):
    """A bundle or its manifest was examined and rejected; codes start with ``BUNDLE_``."""


@dataclass(frozen=True)
class BundleFile:
    path: str
    size: int
    sha256: bytes


@dataclass(frozen=True)
class BundleManifest:
    files: tuple[BundleFile, ...]
    meta: Mapping[str, str] = field(default_factory=dict)

    def to_cbor_value(self) -> dict[str, Any]:
        return {
            "v": BUNDLE_VERSION,
            "type": BUNDLE_TYPE,
            "files": [[f.path, f.size, f.sha256] for f in sorted(self.files, key=lambda f: f.path.encode())],
            "meta": dict(self.meta),
        }

    def encode(self) -> bytes:
        """The canonical manifest: deterministic CBOR (RFC 8949 §4.2.1)."""
        return cbor2.dumps(self.to_cbor_value(), canonical=True)

    def digest(self) -> bytes:
        return hashlib.sha256(self.encode()).digest()

    def to_json(self) -> dict[str, Any]:
        return {
            "v": BUNDLE_VERSION,
            "type": BUNDLE_TYPE,
            "files": [
                {"path": f.path, "size": f.size, "sha256": f.sha256.hex()}
                for f in sorted(self.files, key=lambda f: f.path.encode())
            ],
            "meta": dict(sorted(self.meta.items())),
        }


def file_sha256(path: Path) -> tuple[int, bytes]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.digest()


def _relative_files(directory: Path) -> list[str]:
    names = []
    for item in sorted(directory.rglob("*")):
        if item.is_symlink():
            raise BundleError("BUNDLE_SYMLINK", f"bundles hold regular files only; {item} is a symbolic link")
        if item.is_file():
            rel = item.relative_to(directory).as_posix()
            if rel != MANIFEST_NAME:
                names.append(rel)
    return names


def build_manifest(directory: Path, meta: Mapping[str, str] | None = None) -> BundleManifest:
    """Hash every file under ``directory`` (except an existing manifest) into a manifest."""
    files = []
    for rel in _relative_files(directory):
        size, digest = file_sha256(directory / rel)
        files.append(BundleFile(rel, size, digest))
    if not files:
        raise BundleError("BUNDLE_EMPTY", f"{directory} holds no files")
    return BundleManifest(tuple(files), dict(meta or {}))


def write_manifest(directory: Path, manifest: BundleManifest) -> Path:
    path = directory / MANIFEST_NAME
    path.write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
    return path


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BundleError("BUNDLE_MANIFEST", f"expected {what} to be text, found {type(value).__name__}")
    return value


def parse_manifest(value: Any) -> BundleManifest:
    """Strictly decode a manifest from its JSON value."""
    if not isinstance(value, dict) or set(value) != {"v", "type", "files", "meta"}:
        raise BundleError("BUNDLE_MANIFEST", "expected a manifest object with exactly v, type, files, meta")
    if value["v"] != BUNDLE_VERSION or value["type"] != BUNDLE_TYPE:
        raise BundleError(
            "BUNDLE_MANIFEST", f"expected v {BUNDLE_VERSION} and type {BUNDLE_TYPE!r}, found {value['v']!r}"
        )
    raw_files, meta = value["files"], value["meta"]
    if not isinstance(raw_files, list) or not 0 < len(raw_files) <= MAX_FILES:
        raise BundleError("BUNDLE_MANIFEST", f"expected 1..{MAX_FILES} files")
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise BundleError("BUNDLE_MANIFEST", "expected meta to map text to text")
    files = []
    seen: set[str] = set()
    for item in raw_files:
        if not isinstance(item, dict) or set(item) != {"path", "size", "sha256"}:
            raise BundleError("BUNDLE_MANIFEST", "expected each file as {path, size, sha256}")
        path = _str(item["path"], "path")
        parts = path.split("/")
        if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts) or path == MANIFEST_NAME:
            raise BundleError("BUNDLE_MANIFEST", f"expected a relative path inside the bundle, found {path!r}")
        if path in seen:
            raise BundleError("BUNDLE_MANIFEST", f"file {path!r} is listed twice")
        seen.add(path)
        size = item["size"]
        if type(size) is not int or size < 0:
            raise BundleError("BUNDLE_MANIFEST", f"{path}: expected a non-negative integer size")
        try:
            digest = bytes.fromhex(_str(item["sha256"], "sha256"))
        except ValueError as err:
            raise BundleError("BUNDLE_MANIFEST", f"{path}: sha256 is not hex") from err
        if len(digest) != 32:
            raise BundleError("BUNDLE_MANIFEST", f"{path}: expected a 32-byte sha256")
        files.append(BundleFile(path, size, digest))
    return BundleManifest(tuple(files), dict(meta))


def read_manifest(directory: Path) -> BundleManifest:
    path = directory / MANIFEST_NAME
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise BundleError("BUNDLE_MANIFEST", f"cannot read {path}: {err.strerror or err}") from err
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BundleError("BUNDLE_MANIFEST", f"{path} exceeds {MAX_MANIFEST_BYTES} bytes")
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise BundleError("BUNDLE_MANIFEST", f"{path} is not valid JSON: {err}") from err
    return parse_manifest(value)


def verify_bundle(directory: Path) -> BundleManifest:
    """The manifest of ``directory`` after checking every file against it (and that no other file exists)."""
    manifest = read_manifest(directory)
    listed = {f.path: f for f in manifest.files}
    present = set(_relative_files(directory))
    extra = sorted(present - set(listed))
    if extra:
        raise BundleError("BUNDLE_EXTRA_FILE", f"files not in the manifest: {extra[:5]}")
    missing = sorted(set(listed) - present)
    if missing:
        raise BundleError("BUNDLE_MISSING_FILE", f"files in the manifest but not in {directory}: {missing[:5]}")
    for entry in manifest.files:
        size, digest = file_sha256(directory / entry.path)
        if size != entry.size or digest != entry.sha256:
            raise BundleError(
                "BUNDLE_FILE_MISMATCH",
                f"{entry.path}: expected {entry.size} bytes with sha256 {entry.sha256.hex()}, "
                f"found {size} bytes with {digest.hex()}",
            )
    return manifest
