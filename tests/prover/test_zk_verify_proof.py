"""`trustdial-verify proof`: real ezkl proofs on tiny circuits, accepted and rejected for the right reasons."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from trustdial_verifier._internal.cli import main as verify_main
from trustdial_verifier._internal.proof.artifacts import sha256_file
from zk_test_support import Circuit, onnx_output, write_tensor


def run_verify(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict[str, object]]:
    status = verify_main(["proof", *map(str, args), "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return status, json.loads(out[0])


def pins(circuit: Circuit) -> list[str]:
    """--expect pins for the honest build, hashed from its files (the trusted source a third party
    gets out of band, e.g. a signed manifest), never read from the directory under test."""
    vk = sha256_file(circuit.directory / "vk.key")
    settings = sha256_file(circuit.directory / "settings.json")
    return ["--expect", f"vk={vk}", "--expect", f"settings={settings}"]


def copy_circuit(circuit: Circuit, target: Path) -> Path:
    return Path(shutil.copytree(circuit.directory, target, ignore=shutil.ignore_patterns("pk.key")))


def rewrite_artifacts(directory: Path, **changes: object) -> None:
    path = directory / "artifacts.json"
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc))


def test_valid_proof_with_its_input_is_accepted(capsys, public_circuit, public_proof_a, input_a) -> None:
    status, report = run_verify(
        capsys,
        public_proof_a,
        "--artifacts",
        public_circuit.directory,
        *pins(public_circuit),
        "--input",
        input_a,
        "--allow-dev-srs",
    )
    assert status == 0, report
    assert report["valid"] is True and report["input_checked"] is True
    assert report["srs_kind"] == "dev-insecure"


def test_public_outputs_match_onnxruntime_within_quantization_error(
    capsys, public_circuit, public_proof_a, input_a
) -> None:
    status, report = run_verify(
        capsys, public_proof_a, "--artifacts", public_circuit.directory, *pins(public_circuit), "--allow-dev-srs"
    )
    assert status == 0, report
    values = np.frombuffer(
        __import__("base64").b64decode(json.loads(input_a.read_text())["data_b64"]), dtype="<f4"
    ).reshape(1, -1)
    expected = onnx_output(public_circuit.model, values).ravel()
    assert np.max(np.abs(np.array(report["public_outputs"]) - expected)) < 5e-3


def test_released_outputs_bind_to_output_instances(capsys, public_circuit, public_proof_a, tmp_path) -> None:
    _, report = run_verify(
        capsys, public_proof_a, "--artifacts", public_circuit.directory, *pins(public_circuit), "--allow-dev-srs"
    )
    released = write_tensor(tmp_path / "out.json", np.array([report["public_outputs"]], dtype=np.float64), "float64")
    status, second = run_verify(
        capsys,
        public_proof_a,
        "--artifacts",
        public_circuit.directory,
        *pins(public_circuit),
        "--output",
        released,
        "--allow-dev-srs",
    )
    assert status == 0 and second["output_checked"] is True


def test_modified_instance_is_rejected(capsys, public_circuit, public_proof_a, tmp_path) -> None:
    proof = json.loads(public_proof_a.read_text())
    last = proof["instances"][0][-1]
    proof["instances"][0][-1] = format((int(last[:2], 16) + 1) % 256, "02x") + last[2:]
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(proof))
    status, report = run_verify(
        capsys, tampered, "--artifacts", public_circuit.directory, *pins(public_circuit), "--allow-dev-srs"
    )
    assert (status, report["code"]) == (1, "PROOF_INVALID")


def test_proof_for_another_input_is_rejected(capsys, public_circuit, public_proof_b, input_a) -> None:
    status, report = run_verify(
        capsys,
        public_proof_b,
        "--artifacts",
        public_circuit.directory,
        *pins(public_circuit),
        "--input",
        input_a,
        "--allow-dev-srs",
    )
    assert (status, report["code"]) == (1, "INPUT_INSTANCE_MISMATCH")


def test_vk_from_another_model_is_rejected_even_when_pinned(
    capsys, public_circuit, other_circuit, public_proof_a, tmp_path
) -> None:
    directory = copy_circuit(public_circuit, tmp_path / "swapped")
    shutil.copyfile(other_circuit.directory / "vk.key", directory / "vk.key")
    doc = json.loads((directory / "artifacts.json").read_text())
    doc["files"]["vk"]["sha256"] = sha256_file(directory / "vk.key")
    (directory / "artifacts.json").write_text(json.dumps(doc))
    swapped_pins = pins(Circuit(directory=directory, model=public_circuit.model))  # pins the other model's vk
    status, report = run_verify(capsys, public_proof_a, "--artifacts", directory, *swapped_pins, "--allow-dev-srs")
    assert (status, report["code"]) == (1, "PROOF_INVALID")


def test_dev_srs_is_refused_without_flag(capsys, public_circuit, public_proof_a) -> None:
    status, report = run_verify(capsys, public_proof_a, "--artifacts", public_circuit.directory, *pins(public_circuit))
    assert (status, report["code"]) == (1, "DEV_SRS_REFUSED")


def test_dev_srs_claimed_as_ceremony_is_refused_even_with_flag(
    capsys, public_circuit, public_proof_a, tmp_path
) -> None:
    directory = copy_circuit(public_circuit, tmp_path / "claims-ceremony")
    rewrite_artifacts(directory, srs_kind="ceremony")
    status, report = run_verify(
        capsys, public_proof_a, "--artifacts", directory, *pins(public_circuit), "--allow-dev-srs"
    )
    assert (status, report["code"]) == (1, "SRS_NOT_CEREMONY")


@pytest.mark.parametrize("victim", ["vk.key", "settings.json", "kzg.srs"])
def test_file_not_matching_its_artifact_hash_is_rejected(
    capsys, public_circuit, public_proof_a, tmp_path, victim
) -> None:
    directory = copy_circuit(public_circuit, tmp_path / "edited")
    with (directory / victim).open("ab") as handle:
        handle.write(b" ")
    status, report = run_verify(
        capsys, public_proof_a, "--artifacts", directory, *pins(public_circuit), "--allow-dev-srs"
    )
    assert (status, report["code"]) == (1, "ARTIFACT_HASH_MISMATCH")


def test_missing_vk_is_rejected(capsys, public_circuit, public_proof_a, tmp_path) -> None:
    directory = copy_circuit(public_circuit, tmp_path / "no-vk")
    (directory / "vk.key").unlink()
    status, report = run_verify(
        capsys, public_proof_a, "--artifacts", directory, *pins(public_circuit), "--allow-dev-srs"
    )
    assert (status, report["code"]) == (1, "ARTIFACT_MISSING")


def test_artifacts_disagreeing_with_settings_are_rejected(capsys, public_circuit, public_proof_a, tmp_path) -> None:
    directory = copy_circuit(public_circuit, tmp_path / "wrong-scale")
    doc = json.loads((directory / "artifacts.json").read_text())
    rewrite_artifacts(directory, input_scale=doc["input_scale"] + 1)
    status, report = run_verify(
        capsys, public_proof_a, "--artifacts", directory, *pins(public_circuit), "--allow-dev-srs"
    )
    assert (status, report["code"]) == (1, "SETTINGS_MISMATCH")


def test_pinned_vk_digest_from_a_manifest_must_match(capsys, public_circuit, other_circuit, public_proof_a) -> None:
    other_vk = json.loads((other_circuit.directory / "artifacts.json").read_text())["files"]["vk"]["sha256"]
    settings = sha256_file(public_circuit.directory / "settings.json")
    status, report = run_verify(
        capsys, public_proof_a, "--artifacts", public_circuit.directory, "--expect", f"vk={other_vk}",
        "--expect", f"settings={settings}", "--allow-dev-srs",
    )  # fmt: skip
    assert (status, report["code"]) == (1, "PINNED_HASH_MISMATCH")


def test_pinned_vk_digest_that_matches_is_accepted(capsys, public_circuit, public_proof_a) -> None:
    vk = sha256_file(public_circuit.directory / "vk.key")
    settings = sha256_file(public_circuit.directory / "settings.json")
    status, report = run_verify(
        capsys, public_proof_a, "--artifacts", public_circuit.directory, "--expect", f"vk={vk}",
        "--expect", f"settings={settings}", "--allow-dev-srs",
    )  # fmt: skip
    assert status == 0, report


def test_dropped_instance_is_rejected_as_count_mismatch(capsys, public_circuit, public_proof_a, tmp_path) -> None:
    proof = json.loads(public_proof_a.read_text())
    proof["instances"][0].pop()
    short = tmp_path / "short.json"
    short.write_text(json.dumps(proof))
    status, report = run_verify(
        capsys, short, "--artifacts", public_circuit.directory, *pins(public_circuit), "--allow-dev-srs"
    )
    assert (status, report["code"]) == (1, "INSTANCE_COUNT_MISMATCH")


def test_non_json_proof_is_rejected_not_crashed(capsys, public_circuit, tmp_path) -> None:
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\x00\xffnot json")
    status, report = run_verify(
        capsys, garbage, "--artifacts", public_circuit.directory, *pins(public_circuit), "--allow-dev-srs"
    )
    assert (status, report["code"]) == (1, "PROOF_MALFORMED")


def test_missing_artifacts_directory_is_a_usage_error(capsys, public_circuit, public_proof_a, tmp_path) -> None:
    status, report = run_verify(
        capsys, public_proof_a, "--artifacts", tmp_path / "nowhere", *pins(public_circuit), "--allow-dev-srs"
    )
    assert (status, report["code"]) == (2, "ARTIFACTS_NOT_FOUND")


def test_hashed_proof_binds_to_its_input_tensor(capsys, hashed_circuit, hashed_proof_a, input_a) -> None:
    status, report = run_verify(
        capsys,
        hashed_proof_a,
        "--artifacts",
        hashed_circuit.directory,
        *pins(hashed_circuit),
        "--input",
        input_a,
        "--allow-dev-srs",
    )
    assert status == 0, report
    assert report["input_poseidon"] is not None and report["public_outputs"] is None


def test_hashed_proof_rejects_another_input_tensor(capsys, hashed_circuit, hashed_proof_a, input_b) -> None:
    status, report = run_verify(
        capsys,
        hashed_proof_a,
        "--artifacts",
        hashed_circuit.directory,
        *pins(hashed_circuit),
        "--input",
        input_b,
        "--allow-dev-srs",
    )
    assert (status, report["code"]) == (1, "INPUT_HASH_MISMATCH")


def test_hashed_proof_rejects_a_different_attested_poseidon(capsys, hashed_circuit, hashed_proof_a) -> None:
    wrong = "01" + "00" * 31
    status, report = run_verify(
        capsys,
        hashed_proof_a,
        "--artifacts",
        hashed_circuit.directory,
        *pins(hashed_circuit),
        "--input-poseidon",
        wrong,
        "--allow-dev-srs",
    )
    assert (status, report["code"]) == (1, "INPUT_HASH_MISMATCH")


def test_missing_zk_extra_is_a_usage_error_naming_the_extra(public_circuit, public_proof_a) -> None:
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['ezkl'] = None\n"  # what an install without the 'zk' extra looks like
        "from trustdial_verifier._internal.cli import main\n"
        f"proof, artifacts = {str(public_proof_a)!r}, {str(public_circuit.directory)!r}\n"
        f"pins = {pins(public_circuit)!r}\n"
        "sys.exit(main(['proof', proof, '--artifacts', artifacts, *pins, '--json']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    report = json.loads(done.stdout.strip())
    assert (done.returncode, report["code"]) == (2, "ZK_EXTRA_MISSING")
    assert "trustdial-verifier[zk]" in report["reason"]
