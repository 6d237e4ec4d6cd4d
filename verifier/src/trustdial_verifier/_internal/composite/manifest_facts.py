"""What the composite checks take from a verified measurement manifest (docs/measurements.md).

Per segment name: ``models[name].sha256`` is the segment's ONNX sha256, and for zk segments
``zk[name]`` pins the verifying key, settings, compiled circuit and SRS. The manifest's
``pipeline_policy_sha256`` (when set) pins the policy. The manifest's identity in a composite
receipt is SHA-256 over its signed JSON payload bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from trustdial_verifier._internal.measurements import Manifest
from trustdial_verifier._internal.proof.pins import MANIFEST_ZK_ROLES as ZK_ROLES


@dataclass(frozen=True)
class SegmentMeasurement:
    """What the signed measurement manifest pins for one pipeline segment."""

    model_sha256: str
    vk_sha256: str | None = None
    zk_pins: Mapping[str, str] = field(default_factory=dict)  # artifact role -> sha256 (vk, settings, srs, ...)


@dataclass(frozen=True)
class ManifestFacts:
    """The parts of a verified measurement manifest the composite checks use."""

    sha256: str
    segments: Mapping[str, SegmentMeasurement]
    policy_sha256s: frozenset[str] = frozenset()
    pcrs: Mapping[str, str | None] = field(default_factory=dict)  # "PCR0" -> lowercase hex


def manifest_sha256(manifest: Manifest) -> str:
    return hashlib.sha256(manifest.raw).hexdigest()


def facts_from_manifest(manifest: Manifest) -> ManifestFacts:
    segments: dict[str, SegmentMeasurement] = {}
    zk = manifest.zk
    for name, model in manifest.models.items():
        pins = {ZK_ROLES[field]: value for field, value in zk.get(name, {}).items() if field in ZK_ROLES}
        if name in zk:
            pins["model"] = model["sha256"]
        segments[name] = SegmentMeasurement(
            model_sha256=model["sha256"],
            vk_sha256=zk[name]["vk_sha256"] if name in zk else None,
            zk_pins=pins,
        )
    policy = manifest.pipeline_policy_sha256
    return ManifestFacts(
        sha256=manifest_sha256(manifest),
        segments=segments,
        policy_sha256s=frozenset() if policy is None else frozenset({policy}),
        pcrs=manifest.pcrs,
    )
