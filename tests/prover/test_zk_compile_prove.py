"""`trustdial zk compile` / `zk prove`: artifacts, SRS handling, tuning and progress output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from trustdial_verifier._internal.proof.artifacts import load_artifacts, sha256_file
from trustdial_verifier._internal.proof.tensors import Tensor
from zk_test_support import write_tensor

from prover.circuit_settings import CircuitOptions
from prover.compile import compile_model
from prover.errors import ProverError
from prover.example_models import save_mlp
from prover.prove import prove
from prover.tune import tune

BIN = Path(sys.executable).parent


def test_artifacts_record_the_digest_of_every_file(public_circuit) -> None:
    artifacts = load_artifacts(public_circuit.directory)
    assert set(artifacts.files) == {"model", "settings", "compiled_circuit", "vk", "pk", "srs"}
    for entry in artifacts.files.values():
        assert entry.sha256 == sha256_file(public_circuit.directory / entry.path)
    assert artifacts.srs_kind == "dev-insecure" and artifacts.ezkl_version == "23.0.5"


def test_setup_is_deterministic_so_the_vk_can_be_pinned(public_circuit, dev_srs, tmp_path) -> None:
    import ezkl

    directory = public_circuit.directory
    ezkl.setup(str(directory / "network.compiled"), str(tmp_path / "vk"), str(tmp_path / "pk"), srs_path=str(dev_srs))
    assert sha256_file(tmp_path / "vk") == sha256_file(directory / "vk.key")


def test_compile_without_any_srs_choice_is_refused(public_circuit, tmp_path) -> None:
    with pytest.raises(ProverError) as err:
        compile_model(public_circuit.model, public_circuit.directory / "calibration.json", tmp_path / "out")
    assert err.value.code == "SRS_REQUIRED"


def test_non_ceremony_srs_is_refused_without_dev_flag(public_circuit, dev_srs, tmp_path) -> None:
    with pytest.raises(ProverError) as err:
        compile_model(
            public_circuit.model,
            public_circuit.directory / "calibration.json",
            tmp_path / "out",
            srs=dev_srs,
            options=CircuitOptions().with_decomposition(256, 4),
        )
    assert err.value.code == "SRS_NOT_CEREMONY"


def test_prove_refuses_a_tampered_proving_key(public_circuit, tmp_path) -> None:
    import shutil

    directory = Path(shutil.copytree(public_circuit.directory, tmp_path / "copy"))
    with (directory / "pk.key").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ProverError) as err:
        prove(directory, Tensor("float32", (1, 6), (0.0,) * 6), tmp_path / "proof.json")
    assert err.value.code == "ARTIFACT_HASH_MISMATCH"


def test_input_of_the_wrong_length_fails_with_a_typed_error(public_circuit, tmp_path) -> None:
    with pytest.raises(ProverError) as err:
        prove(public_circuit.directory, Tensor("float32", (1, 5), (0.0,) * 5), tmp_path / "proof.json")
    assert err.value.code == "PROVE_FAILED"


def test_prove_command_prints_progress_and_one_json_line(public_circuit, input_a, tmp_path) -> None:
    proof = tmp_path / "proof.json"
    done = subprocess.run(
        [
            str(BIN / "trustdial"),
            "zk",
            "prove",
            str(public_circuit.directory),
            "--input",
            str(input_a),
            "--output",
            str(proof),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "[zk prove] proving" in done.stderr
    assert json.loads(done.stdout.strip()) == {"ok": True, "proof": str(proof)}
    assert proof.is_file()


def test_tune_finds_fewer_logrows_than_default_within_tolerance(tmp_path) -> None:
    model = save_mlp(tmp_path / "m.onnx", [4, 8, 2], seed=5)
    calibration = tmp_path / "cal.json"
    calibration.write_text(json.dumps({"input_data": [np.random.default_rng(5).normal(size=4 * 4).tolist()]}))
    chosen, candidates = tune(model, calibration, CircuitOptions(), tolerance=1e-2)
    default = candidates[0]
    best = next(c for c in candidates if c.options == chosen)
    assert default.options.decomp_base is None and default.accepted
    assert best.logrows < default.logrows
    assert best.max_abs_error <= 1e-2


def test_compile_command_writes_artifacts_json(public_circuit, tmp_path) -> None:
    out = tmp_path / "cli"
    calibration = public_circuit.directory / "calibration.json"
    done = subprocess.run(
        [
            str(BIN / "trustdial"),
            "zk",
            "compile",
            str(public_circuit.model),
            "--calibration",
            str(calibration),
            "--output",
            str(out),
            "--dev-srs",
            "--decomp-base",
            "256",
            "--decomp-legs",
            "4",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    reported = json.loads(done.stdout.strip())
    assert reported["ok"] is True and reported["srs_kind"] == "dev-insecure"
    assert json.loads((out / "artifacts.json").read_text())["files"] == reported["files"]


def test_canonical_tensor_file_round_trips(tmp_path) -> None:
    from trustdial_verifier._internal.proof.tensors import load_tensor_file

    values = np.arange(6, dtype=np.float32).reshape(1, 6) / 7
    tensor = load_tensor_file(write_tensor(tmp_path / "t.json", values), side="input")
    assert tensor.values == tuple(float(v) for v in values.ravel()) and tensor.shape == (1, 6)
    assert tensor.sha256 == __import__("hashlib").sha256(values.astype("<f4").tobytes()).hexdigest()
