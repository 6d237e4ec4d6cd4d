"""Trust comes from outside the artifacts directory: unpinned verification is refused, an attacker's
self-consistent artifacts are rejected under the honest pins, and a signed manifest pins a build."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from measurements.manifests import kat1_manifest, key_files
from test_zk_verify_proof import pins, run_verify
from trustdial_verifier._internal.proof import verify_proof
from trustdial_verifier._internal.proof.artifacts import sha256_file
from trustdial_verifier._internal.proof.tensors import load_tensor_file
from trustdial_verifier.errors import InputError
from zk_test_support import Circuit, write_tensor

from infra.measurements import LocalKeySigner, sign_manifest
from prover.prove import prove

SEGMENT = "head"


@pytest.fixture(scope="module")
def attacker_proof(other_circuit: Circuit, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The attacker's own circuit (other_circuit: own model, vk, settings, self-consistent artifacts.json)
    and a genuine proof under it, for an input the attacker chose: (proof.json, input tensor file)."""
    root = tmp_path_factory.mktemp("attacker")
    values = np.full((1, 6), 0.25, dtype=np.float32)
    tensor_file = write_tensor(root / "input.json", values)
    proof = prove(other_circuit.directory, load_tensor_file(tensor_file, side="input"), root / "proof.json")
    return proof, tensor_file


def _zk_entry(circuit: Circuit) -> dict[str, str]:
    directory = circuit.directory
    return {
        "vk_sha256": sha256_file(directory / "vk.key"),
        "settings_sha256": sha256_file(directory / "settings.json"),
        "srs_sha256": sha256_file(directory / "kzg.srs"),
        "compiled_sha256": sha256_file(directory / "network.compiled"),
        "srs_kind": "dev-insecure",
    }


def _signed_manifest(folder: Path, circuit: Circuit) -> tuple[Path, Path]:
    """A manifest for ``circuit``'s build, signed with a fresh P-384 key: (manifest.cose, key.pub.pem)."""
    folder.mkdir()
    private, public = key_files(folder)
    raw = kat1_manifest(models={SEGMENT: {"sha256": sha256_file(circuit.model)}}, zk={SEGMENT: _zk_entry(circuit)})
    manifest = folder / "manifest.cose"
    manifest.write_bytes(sign_manifest(raw, LocalKeySigner(private.read_bytes())))
    return manifest, public


def test_unpinned_cli_verification_is_refused_as_usage_error(capsys, public_circuit, public_proof_a) -> None:
    status, report = run_verify(capsys, public_proof_a, "--artifacts", public_circuit.directory, "--allow-dev-srs")
    assert (status, report["code"]) == (2, "NO_PINS")


@pytest.mark.parametrize("expected", [None, {}], ids=["none", "empty"])
def test_unpinned_api_verification_is_refused(public_circuit, public_proof_a, expected) -> None:
    with pytest.raises(InputError) as caught:
        verify_proof(public_proof_a, public_circuit.directory, allow_dev_srs=True, expected_sha256=expected)
    assert caught.value.code == "NO_PINS"


def test_vk_pin_without_settings_pin_is_refused_on_the_cli(capsys, public_circuit, public_proof_a) -> None:
    vk_only = pins(public_circuit)[:2]
    status, report = run_verify(
        capsys, public_proof_a, "--artifacts", public_circuit.directory, *vk_only, "--allow-dev-srs"
    )
    assert (status, report["code"]) == (2, "INCOMPLETE_PINS")


def test_attacker_artifacts_verify_under_the_attackers_own_pins(capsys, other_circuit, attacker_proof) -> None:
    """The premise of the attack: the attacker's directory is internally consistent and its proof genuine."""
    proof, tensor = attacker_proof
    status, report = run_verify(
        capsys, proof, "--artifacts", other_circuit.directory, *pins(other_circuit), "--input", tensor,
        "--allow-dev-srs",
    )  # fmt: skip
    assert status == 0, report


def test_attacker_artifacts_are_rejected_under_the_honest_pins(
    capsys, public_circuit, other_circuit, attacker_proof
) -> None:
    proof, tensor = attacker_proof
    status, report = run_verify(
        capsys, proof, "--artifacts", other_circuit.directory, *pins(public_circuit), "--input", tensor,
        "--allow-dev-srs",
    )  # fmt: skip
    assert (status, report["code"]) == (1, "PINNED_HASH_MISMATCH")


def test_manifest_pinned_verification_is_accepted(capsys, public_circuit, public_proof_a, input_a, tmp_path) -> None:
    manifest, key = _signed_manifest(tmp_path / "build", public_circuit)
    status, report = run_verify(
        capsys, public_proof_a, "--artifacts", public_circuit.directory, "--measurements", manifest,
        "--manifest-key", key, "--segment", SEGMENT, "--input", input_a, "--allow-dev-srs",
    )  # fmt: skip
    assert status == 0, report
    assert report["vk_sha256"] == sha256_file(public_circuit.directory / "vk.key")


def test_manifest_from_another_build_is_rejected(
    capsys, public_circuit, other_circuit, public_proof_a, tmp_path
) -> None:
    manifest, key = _signed_manifest(tmp_path / "other-build", other_circuit)
    status, report = run_verify(
        capsys, public_proof_a, "--artifacts", public_circuit.directory, "--measurements", manifest,
        "--manifest-key", key, "--segment", SEGMENT, "--allow-dev-srs",
    )  # fmt: skip
    assert (status, report["code"]) == (1, "PINNED_HASH_MISMATCH")


def test_manifest_signed_by_another_key_is_rejected(capsys, public_circuit, public_proof_a, tmp_path) -> None:
    manifest, _ = _signed_manifest(tmp_path / "build", public_circuit)
    _, stranger = key_files(tmp_path)
    status, report = run_verify(
        capsys, public_proof_a, "--artifacts", public_circuit.directory, "--measurements", manifest,
        "--manifest-key", stranger, "--segment", SEGMENT, "--allow-dev-srs",
    )  # fmt: skip
    assert (status, report["code"]) == (1, "MANIFEST_BAD_SIGNATURE")


def test_segment_absent_from_the_manifest_is_a_usage_error(capsys, public_circuit, public_proof_a, tmp_path) -> None:
    manifest, key = _signed_manifest(tmp_path / "build", public_circuit)
    status, report = run_verify(
        capsys, public_proof_a, "--artifacts", public_circuit.directory, "--measurements", manifest,
        "--manifest-key", key, "--segment", "tail", "--allow-dev-srs",
    )  # fmt: skip
    assert (status, report["code"]) == (2, "SEGMENT_NOT_IN_MANIFEST")


def test_manifest_without_key_is_a_usage_error(capsys, public_circuit, public_proof_a, tmp_path) -> None:
    manifest, _ = _signed_manifest(tmp_path / "build", public_circuit)
    status, report = run_verify(
        capsys, public_proof_a, "--artifacts", public_circuit.directory, "--measurements", manifest,
        "--segment", SEGMENT, "--allow-dev-srs",
    )  # fmt: skip
    assert (status, report["code"]) == (2, "INCOMPLETE_MANIFEST_ARGS")


def test_expect_pins_and_manifest_together_are_a_usage_error(capsys, public_circuit, public_proof_a, tmp_path) -> None:
    manifest, key = _signed_manifest(tmp_path / "build", public_circuit)
    status, report = run_verify(
        capsys, public_proof_a, "--artifacts", public_circuit.directory, *pins(public_circuit),
        "--measurements", manifest, "--manifest-key", key, "--segment", SEGMENT, "--allow-dev-srs",
    )  # fmt: skip
    assert (status, report["code"]) == (2, "CONFLICTING_PINS")


def test_manifest_pins_match_the_artifacts_json_the_compiler_wrote(public_circuit) -> None:
    """The manifest fields used here are the digests `trustdial zk compile` records (independent check)."""
    files = json.loads((public_circuit.directory / "artifacts.json").read_text())["files"]
    entry = _zk_entry(public_circuit)
    assert (entry["vk_sha256"], entry["settings_sha256"], entry["compiled_sha256"]) == (
        files["vk"]["sha256"], files["settings"]["sha256"], files["compiled_circuit"]["sha256"],
    )  # fmt: skip
