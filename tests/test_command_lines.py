"""Both console scripts exist in the venv and answer --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("script", ["trustdial", "trustdial-verify"])
def test_console_script_prints_help(script: str) -> None:
    done = subprocess.run([str(BIN / script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_verify_without_command_is_a_usage_error() -> None:
    done = subprocess.run([str(BIN / "trustdial-verify")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2


def test_serve_with_a_file_onnxruntime_cannot_load_exits_2(tmp_path: Path) -> None:
    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_text('{"not": "an onnx model"}')
    done = subprocess.run(
        [
            str(BIN / "trustdial"), "serve", "--model", f"m={not_onnx}",
            "--listen", "tcp:127.0.0.1:0", "--nsm", "simulated",
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "trustdial serve:" in done.stderr and "model.onnx" in done.stderr and "Traceback" not in done.stderr
