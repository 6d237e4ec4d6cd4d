"""Session-wide ezkl fixtures: one dev SRS, a few tiny compiled circuits, reused by every prover test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from trustdial_verifier._internal.proof.tensors import load_tensor_file
from zk_test_support import SIZES, Circuit, write_tensor

from prover.circuit_settings import CircuitOptions
from prover.compile import compile_model
from prover.example_models import save_mlp
from prover.prove import prove

# A small decomposition keeps every test circuit at logrows <= 11 (cheap keys, SRS and proofs).
TEST_DECOMPOSITION = (256, 4)


@pytest.fixture(scope="session")
def zk_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zk")


@pytest.fixture(scope="session")
def dev_srs(public_circuit: Circuit) -> Path:
    """A dev SRS of exactly the public circuit's logrows (a larger SRS works but ezkl's downsizing costs seconds)."""
    return public_circuit.directory / "kzg.srs"


def _compile(zk_root: Path, name: str, seed: int, visibility: str) -> Circuit:
    model = save_mlp(zk_root / f"{name}.onnx", SIZES, seed=seed)
    rng = np.random.default_rng(100 + seed)
    calibration = zk_root / f"{name}-calibration.json"
    calibration.write_text(json.dumps({"input_data": [rng.normal(size=SIZES[0] * 8).tolist()]}), encoding="utf-8")
    options = CircuitOptions(input_visibility=visibility, output_visibility=visibility).with_decomposition(
        *TEST_DECOMPOSITION
    )
    directory = zk_root / name
    compile_model(model, calibration, directory, dev_srs=True, options=options)  # exact-size dev SRS
    return Circuit(directory=directory, model=model)


@pytest.fixture(scope="session")
def public_circuit(zk_root: Path) -> Circuit:
    return _compile(zk_root, "public", seed=1, visibility="public")


@pytest.fixture(scope="session")
def other_circuit(zk_root: Path) -> Circuit:
    """Same architecture and settings shape, different weights: a different vk."""
    return _compile(zk_root, "other", seed=2, visibility="public")


@pytest.fixture(scope="session")
def hashed_circuit(zk_root: Path) -> Circuit:
    return _compile(zk_root, "hashed", seed=1, visibility="hashed")


@pytest.fixture(scope="session")
def input_a(zk_root: Path) -> Path:
    return write_tensor(
        zk_root / "input-a.json", np.random.default_rng(7).normal(size=(1, SIZES[0])).astype(np.float32)
    )


@pytest.fixture(scope="session")
def input_b(zk_root: Path) -> Path:
    return write_tensor(
        zk_root / "input-b.json", np.random.default_rng(8).normal(size=(1, SIZES[0])).astype(np.float32)
    )


@pytest.fixture(scope="session")
def public_proof_a(public_circuit: Circuit, input_a: Path, zk_root: Path) -> Path:
    return prove(public_circuit.directory, load_tensor_file(input_a, side="input"), zk_root / "public-proof-a.json")


@pytest.fixture(scope="session")
def public_proof_b(public_circuit: Circuit, input_b: Path, zk_root: Path) -> Path:
    return prove(public_circuit.directory, load_tensor_file(input_b, side="input"), zk_root / "public-proof-b.json")


@pytest.fixture(scope="session")
def hashed_proof_a(hashed_circuit: Circuit, input_a: Path, zk_root: Path) -> Path:
    return prove(hashed_circuit.directory, load_tensor_file(input_a, side="input"), zk_root / "hashed-proof-a.json")
