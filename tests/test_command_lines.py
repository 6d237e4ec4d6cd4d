"""Both console scripts exist in the venv and answer --help."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize(
    "words",
    [
        ["receipt", "response.json", "--max-age", "abc"],  # a value of the wrong type
        ["receipt", "response.json", "--no-such-flag"],
        ["no-such-command"],
        ["attestation"],  # a required argument missing
        ["receipt", "response.json", "--max-age=-5"],  # a negative age would refuse every receipt
        ["receipt", "response.json", "--max-attestation-age=-1"],
    ],
)
def test_a_refused_command_line_with_json_still_prints_one_json_object(words: list[str]) -> None:
    done = subprocess.run(
        [str(BIN / "trustdial-verify"), *words, "--json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    answer = json.loads(lines[0])
    assert (answer["valid"], answer["code"]) == (False, "BAD_ARGUMENTS")
    assert answer["reason"]


def test_a_refused_command_line_without_json_explains_on_stderr() -> None:
    done = subprocess.run(
        [str(BIN / "trustdial-verify"), "receipt", "response.json", "--max-age", "abc"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert "trustdial-verify receipt: error: argument --max-age: expected whole seconds, found 'abc'" in done.stderr


def test_the_operator_command_keeps_the_json_contract_on_a_refused_command_line() -> None:
    done = subprocess.run(
        [str(BIN / "trustdial"), "pipeline", "run", "pipeline.toml", "--no-such-flag", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    answer = json.loads(done.stdout)
    assert (answer["ok"], answer["code"]) == (False, "BAD_ARGUMENTS")
    assert "--split" in answer["reason"]  # the first refusal argparse reports: required flags missing


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
