"""Where a proof verifier's trust comes from: digests pinned OUTSIDE the artifacts directory.

An artifacts directory is evidence, not a root of trust: whoever hands it over can put their own
circuit, vk and settings there with a self-consistent ``artifacts.json``. ``verify_proof``
therefore needs the vk and settings SHA-256 from a trusted source, either given explicitly
(``--expect vk=… --expect settings=…``) or read from a signed measurement manifest's
``zk[SEGMENT]`` entry (``pins_from_manifest``). Without them it refuses (``NO_PINS``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from trustdial_verifier._internal.measurements import Manifest
from trustdial_verifier._internal.proof.artifacts import FILE_ROLES
from trustdial_verifier.errors import InputError

#: A pin must cover both: the vk decides the circuit, settings.json what its public instances mean
#: (input/output split, scales), so a pinned vk with a swapped settings.json reports other tensors.
PINNED_TOGETHER: Final = ("vk", "settings")

#: manifest ``zk[SEGMENT]`` field -> artifact role in the prover's artifacts.json
MANIFEST_ZK_ROLES: Final = {
    "vk_sha256": "vk",
    "settings_sha256": "settings",
    "srs_sha256": "srs",
    "compiled_sha256": "compiled_circuit",
}

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def require_pins(expected: Mapping[str, str] | None) -> dict[str, str]:
    """Validate caller pins; return them lowercased. Empty or partial pins are refused."""
    if not expected:
        raise InputError(
            "NO_PINS",
            "expected the vk and settings sha256 from a trusted source (--expect vk=HEX --expect settings=HEX, or "
            "--measurements MANIFEST --manifest-key PEM --segment NAME; Python: expected_sha256=...), found none: "
            "an artifacts directory alone proves nothing, whoever made it chose its circuit",
        )
    missing = [role for role in PINNED_TOGETHER if role not in expected]
    if missing:
        raise InputError(
            "INCOMPLETE_PINS",
            f"expected pins for both {' and '.join(PINNED_TOGETHER)} (the vk fixes the circuit, settings.json the "
            f"meaning of its instances), found no pin for {', '.join(missing)}",
        )
    pins: dict[str, str] = {}
    for role, digest in expected.items():
        if role not in FILE_ROLES:
            raise InputError("UNKNOWN_PIN", f"expected a pin for one of {FILE_ROLES}, got {role!r}")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise InputError("BAD_PIN", f"expected a 64-hex-digit sha256 for {role}, got {digest!r}")
        pins[role] = digest.lower()
    return pins


def pins_from_manifest(manifest: Manifest, segment: str) -> dict[str, str]:
    """The pins a verified measurement manifest publishes for ``segment`` (``zk[segment]``, and the
    segment's ONNX digest from ``models[segment]`` when present)."""
    entry = manifest.zk.get(segment)
    if entry is None:
        known = ", ".join(sorted(manifest.zk)) or "none"
        raise InputError(
            "SEGMENT_NOT_IN_MANIFEST", f"expected a zk entry for segment {segment!r} in the manifest; it has: {known}"
        )
    pins = {role: entry[field] for field, role in MANIFEST_ZK_ROLES.items()}
    model = manifest.models.get(segment)
    if model is not None:
        pins["model"] = model["sha256"]
    return pins
