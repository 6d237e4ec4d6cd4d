"""`trustdial serve --circuit NAME=ZKDIR`: which models are served with their circuit's semantics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from enclave_app.serve_command import _registry
from prover.example_models import save_mlp

BIN = Path(sys.executable).parent


def test_circuit_spec_without_a_directory_is_refused(tmp_path: Path) -> None:
    model = save_mlp(tmp_path / "m.onnx", [4, 3, 2], seed=1)
    with pytest.raises(ValueError, match="NAME=ZKDIR"):
        _registry([f"m={model}"], ["m"], 0)


def test_circuit_for_a_model_not_served_is_refused(tmp_path: Path) -> None:
    model = save_mlp(tmp_path / "m.onnx", [4, 3, 2], seed=1)
    with pytest.raises(ValueError, match="names no --model"):
        _registry([f"m={model}"], [f"other={tmp_path}"], 0)


def test_serve_with_a_circuit_directory_without_artifacts_exits_2(tmp_path: Path) -> None:
    model = save_mlp(tmp_path / "m.onnx", [4, 3, 2], seed=1)
    done = subprocess.run(
        [
            str(BIN / "trustdial"), "serve", "--model", f"m={model}", "--circuit", f"m={tmp_path / 'missing'}",
            "--listen", "tcp:127.0.0.1:0", "--nsm", "simulated",
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "trustdial serve:" in done.stderr and "Traceback" not in done.stderr
