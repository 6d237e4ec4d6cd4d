from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parent.parent / "data" / "eif"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def data() -> Path:
    return DATA


def run_cli(script: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, Any, str]:
    """Run a console script with --json; return (status, parsed stdout or None, stderr)."""
    done = subprocess.run([str(BIN / script), *args, "--json"], capture_output=True, text=True, timeout=300, env=env)
    lines = done.stdout.strip().splitlines()
    parsed = json.loads(lines[-1]) if lines else None
    return done.returncode, parsed, done.stderr
