"""The measurement manifest (``schema: trustdial.measurements/v1``) and its validation.

The schema (documented in docs/measurements.md) is checked field by field with no extra
dependency: every field listed is required (nullable ones must be present as ``null``), no other
field is allowed, hex digests are lowercase and of the exact length.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from trustdial_verifier._internal import strict_json
from trustdial_verifier._internal.measurements.errors import ManifestError
from trustdial_verifier.errors import describe_value

SCHEMA_ID = "trustdial.measurements/v1"
HEX96 = re.compile(r"[0-9a-f]{96}")
HEX64 = re.compile(r"[0-9a-f]{64}")
IMAGE_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
NAME = re.compile(r"[A-Za-z0-9._/-]{1,128}")
IMAGE_INPUTS = ("debian_lock_sha256", "rootfs_sha256", "runtime_lock_sha256")
ZK_FIELDS = ("vk_sha256", "settings_sha256", "srs_sha256", "compiled_sha256")

Check = Callable[[Any, str], None]


def _fail(path: str, expected: str, found: Any) -> ManifestError:
    return ManifestError("MANIFEST_SCHEMA", f"{_short(path)}: expected {expected}, found {describe_value(found)}")


def _short(path: str) -> str:
    """A field path names attacker-chosen keys (models.<name>); keep it short in a reason."""
    return path if len(path) <= 200 else path[:200] + "..."


def _pattern(regex: re.Pattern[str], expected: str, *, nullable: bool = False) -> Check:
    def check(value: Any, path: str) -> None:
        if value is None and nullable:
            return
        if not isinstance(value, str) or not regex.fullmatch(value):
            raise _fail(path, expected + (" or null" if nullable else ""), value)

    return check


def _text(value: Any, path: str) -> None:
    if not isinstance(value, str) or not value or len(value) > 256:
        raise _fail(path, "a non-empty string of at most 256 characters", value)


def _size(value: Any, path: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise _fail(path, "a positive integer", value)


def _choice(options: frozenset[str]) -> Check:
    def check(value: Any, path: str) -> None:
        if value not in options:
            raise _fail(path, f"one of {sorted(options)}", value)

    return check


def _obj(fields: Mapping[str, Check]) -> Check:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _fail(path, "an object", value)
        missing = [k for k in fields if k not in value]
        if missing:
            raise ManifestError("MANIFEST_SCHEMA", f"{_short(path)}: missing field(s) {missing}")
        extra = sorted(set(value) - set(fields))
        if extra:
            shown = ", ".join(describe_value(key, 40) for key in extra[:8])
            raise ManifestError("MANIFEST_SCHEMA", f"{_short(path)}: {len(extra)} unknown field(s): {shown}")
        for key, sub in fields.items():
            sub(value[key], f"{path}.{key}")

    return check


def _map_of(item: Check) -> Check:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _fail(path, "an object", value)
        for key, sub in value.items():
            if not NAME.fullmatch(key):
                raise _fail(f"{path} key", "a name of [A-Za-z0-9._/-], 1..128 characters", key)
            item(sub, f"{path}.{key}")

    return check


sha256_hex = _pattern(HEX64, "64 lowercase hex digits (sha256)")
SCHEMA: Check = _obj(
    {
        "schema": _choice(frozenset({SCHEMA_ID})),
        "build_time": _pattern(RFC3339, "an RFC 3339 timestamp"),
        "source_revision": _text,
        "eif": _obj(
            {
                "sha384": _pattern(HEX96, "96 lowercase hex digits (sha384)"),
                "sha256": sha256_hex,
                "size": _size,
                "arch": _choice(frozenset({"x86_64", "aarch64"})),
            }
        ),
        "pcrs": _obj(
            {
                "PCR0": _pattern(HEX96, "96 lowercase hex digits"),
                "PCR1": _pattern(HEX96, "96 lowercase hex digits"),
                "PCR2": _pattern(HEX96, "96 lowercase hex digits"),
                "PCR8": _pattern(HEX96, "96 lowercase hex digits", nullable=True),
            }
        ),
        "blobs": _map_of(_obj({"sha256": sha256_hex})),
        "image": _obj(
            {
                "digest": _pattern(IMAGE_DIGEST, "sha256:<64 hex>", nullable=True),
                # what went into PCR2 (the customer ramdisk), from the Docker-free build's summary
                **{name: _pattern(HEX64, "64 lowercase hex digits", nullable=True) for name in IMAGE_INPUTS},
            }
        ),
        "models": _map_of(_obj({"sha256": sha256_hex})),
        "zk": _map_of(_obj({**{f: sha256_hex for f in ZK_FIELDS}, "srs_kind": _text})),
        "pipeline_policy_sha256": _pattern(HEX64, "64 lowercase hex digits", nullable=True),
    }
)


@dataclass(frozen=True)
class Manifest:
    """A validated manifest. ``document`` is the parsed JSON, ``raw`` the exact signed bytes."""

    document: dict[str, Any]
    raw: bytes

    @property
    def pcrs(self) -> dict[str, str | None]:
        return dict(self.document["pcrs"])

    @property
    def eif_sha384(self) -> str:
        return str(self.document["eif"]["sha384"])

    @property
    def models(self) -> dict[str, dict[str, str]]:
        return dict(self.document["models"])

    @property
    def zk(self) -> dict[str, dict[str, str]]:
        return dict(self.document["zk"])

    @property
    def pipeline_policy_sha256(self) -> str | None:
        value = self.document["pipeline_policy_sha256"]
        return None if value is None else str(value)


def parse_manifest(raw: bytes) -> Manifest:
    """Parse and validate manifest JSON bytes (no signature check: see load_signed_manifest)."""
    try:
        document = strict_json.loads(raw)
    except strict_json.JsonError as err:
        raise ManifestError(
            "MANIFEST_BAD_JSON", f"manifest is not strict UTF-8 JSON: {err.reason} ({err.code})"
        ) from None
    if isinstance(document, dict) and document.get("schema") not in (None, SCHEMA_ID):
        raise ManifestError(
            "MANIFEST_UNSUPPORTED_SCHEMA",
            f"expected schema {SCHEMA_ID!r}, found {describe_value(document.get('schema'))}",
        )
    SCHEMA(document, "manifest")
    return Manifest(document=document, raw=raw)
