"""A third party's install: ``pip install ./verifier`` in a fresh venv pulls in no service dependencies."""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = {"onnxruntime", "ezkl", "boto3", "aws-cdk-lib"}
MARLIN = REPO / "tests" / "data" / "nitro" / "marlin_oyster_aws_2024-12-13.cbor"
MARLIN_PCR0 = "189038eccf28a3a098949e402f3b3d86a876f4915c5b02d546abb5d8c507ceb1755b8192d8cfca66e8f226160ca4c7a6"


@pytest.fixture(scope="module")
def verifier_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("verifier-venv")
    venv.EnvBuilder(with_pip=True).create(target)
    python = target / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-c", str(REPO / "constraints.txt"), str(REPO / "verifier")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=target,
    )
    assert done.returncode == 0, done.stderr
    return target


@pytest.mark.slow
def test_install_pulls_in_no_service_dependencies(verifier_venv: Path) -> None:
    listing = subprocess.run(
        [str(verifier_venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    installed = {entry["name"].lower() for entry in json.loads(listing.stdout)}
    assert "trustdial-verifier" in installed
    assert not installed & FORBIDDEN


@pytest.mark.slow
def test_installed_console_script_answers_help(verifier_venv: Path) -> None:
    done = subprocess.run(
        [str(verifier_venv / "bin" / "trustdial-verify"), "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "attestation" in done.stdout


@pytest.mark.slow
def test_installed_package_ships_the_pinned_root(verifier_venv: Path) -> None:
    done = subprocess.run(
        [
            str(verifier_venv / "bin" / "trustdial-verify"),
            "attestation",
            str(MARLIN),
            "--at",
            "doc",
            "--pcr",
            f"0={MARLIN_PCR0}",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=verifier_venv,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["valid"] is True
