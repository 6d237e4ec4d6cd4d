"""The Docker-dependent make targets fail with a clear message when Docker is absent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("target", ["eif-docker"])
def test_docker_targets_explain_that_docker_is_missing(tmp_path: Path, target: str) -> None:
    make = shutil.which("make")
    assert make is not None
    # an empty PATH: `command -v docker` cannot find Docker whether or not the machine has it
    done = subprocess.run(
        [make, "-s", "-C", str(ROOT), target], capture_output=True, text=True, timeout=120,
        env={"PATH": str(tmp_path), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode != 0
    assert "Docker is required" in done.stderr
