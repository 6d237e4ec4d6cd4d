"""The demo's development image and locally signed manifest."""

from __future__ import annotations

from pathlib import Path

from trustdial_verifier._internal.composite.manifest_facts import facts_from_manifest
from trustdial_verifier._internal.eif import measure_eif
from trustdial_verifier._internal.measurements import load_signed_manifest

from trustdial.pipeline.dev_image import SYNTHETIC_MARKER, build_dev_image
from trustdial.pipeline.dev_manifest import publish_dev_manifest


def _model(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / f"m{len(content)}.onnx"
    path.write_bytes(content)
    return path


def test_changing_a_tee_model_changes_pcr2_only(tmp_path: Path) -> None:
    a = build_dev_image({"body": _model(tmp_path, b"model A")}, tmp_path / "a")
    b = build_dev_image({"body": _model(tmp_path, b"model BB")}, tmp_path / "b")
    assert a.pcrs["PCR1"] == b.pcrs["PCR1"]
    assert a.pcrs["PCR2"] != b.pcrs["PCR2"]


def test_same_models_give_a_bit_identical_image(tmp_path: Path) -> None:
    model = _model(tmp_path, b"model A")
    a = build_dev_image({"body": model}, tmp_path / "a")
    b = build_dev_image({"body": model}, tmp_path / "b")
    assert a.eif.read_bytes() == b.eif.read_bytes()


def test_image_is_marked_synthetic_in_its_metadata(tmp_path: Path) -> None:
    image = build_dev_image({"body": _model(tmp_path, b"m")}, tmp_path / "a")
    assert image.synthetic
    assert SYNTHETIC_MARKER.strip().decode() in str(measure_eif(image.eif).metadata)


def test_dev_manifest_verifies_and_pins_models_vks_and_policy(tmp_path: Path) -> None:
    image = build_dev_image({"body": _model(tmp_path, b"m")}, tmp_path / "img")
    zk = {"vk_sha256": "aa" * 32, "settings_sha256": "bb" * 32, "srs_sha256": "cc" * 32, "compiled_sha256": "dd" * 32}
    published = publish_dev_manifest(
        eif=image.eif,
        blobs={"kernel": image.eif},
        models={"body": "01" * 32, "head": "02" * 32},
        zk={"head": {**zk, "srs_kind": "dev-insecure"}},
        policy_sha256="ee" * 32,
        directory=tmp_path / "pub",
    )
    manifest = load_signed_manifest(published.signed.read_bytes(), published.public_key.read_bytes())
    facts = facts_from_manifest(manifest)
    assert facts.sha256 == published.manifest_sha256
    assert facts.pcrs["PCR2"] == image.pcrs["PCR2"]
    assert facts.segments["head"].vk_sha256 == "aa" * 32
    assert facts.policy_sha256s == frozenset({"ee" * 32})
