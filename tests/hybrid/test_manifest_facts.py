"""The composite verifier reads segment models, verifying keys and the policy pin from a
measurement manifest made by the image-build area's own manifest writer."""

from __future__ import annotations

import hashlib
from pathlib import Path

from trustdial_verifier._internal.composite.manifest_facts import facts_from_manifest
from trustdial_verifier._internal.measurements import parse_manifest

from infra.measurements import create_manifest

KAT1 = Path(__file__).resolve().parent.parent / "data" / "eif" / "kat1.rust.eif"
ZK_HEAD = {"vk_sha256": "aa" * 32, "settings_sha256": "bb" * 32, "srs_sha256": "cc" * 32, "compiled_sha256": "dd" * 32}


def _manifest(policy: str | None = "ee" * 32) -> bytes:
    return create_manifest(
        eif=KAT1,
        source_revision="test",
        build_time="2026-11-26T00:00:00Z",
        blobs={"init": "11" * 32},
        models={"body": {"sha256": "01" * 32}, "head": {"sha256": "02" * 32}},
        zk={"head": {**ZK_HEAD, "srs_kind": "dev-insecure"}},
        pipeline_policy_sha256=policy,
    )


def test_segments_carry_model_and_vk_hashes() -> None:
    facts = facts_from_manifest(parse_manifest(_manifest()))
    assert facts.segments["body"].model_sha256 == "01" * 32
    assert facts.segments["body"].vk_sha256 is None
    assert facts.segments["head"].vk_sha256 == "aa" * 32


def test_zk_segment_pins_every_artifact_role() -> None:
    pins = facts_from_manifest(parse_manifest(_manifest())).segments["head"].zk_pins
    assert pins == {
        "vk": "aa" * 32,
        "settings": "bb" * 32,
        "srs": "cc" * 32,
        "compiled_circuit": "dd" * 32,
        "model": "02" * 32,
    }


def test_manifest_identity_is_sha256_of_its_json_bytes() -> None:
    raw = _manifest()
    assert facts_from_manifest(parse_manifest(raw)).sha256 == hashlib.sha256(raw).hexdigest()


def test_policy_pin_is_taken_from_the_manifest() -> None:
    assert facts_from_manifest(parse_manifest(_manifest())).policy_sha256s == frozenset({"ee" * 32})


def test_manifest_without_a_policy_pins_none() -> None:
    assert facts_from_manifest(parse_manifest(_manifest(None))).policy_sha256s == frozenset()
