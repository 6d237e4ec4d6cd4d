"""``trustdial demo``: the hybrid pipeline end to end; exit 0 only when the receipt verified."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, object]]:
    workdir = tmp_path_factory.mktemp("demo") / "out"
    done = subprocess.run(
        [str(BIN / "trustdial"), "demo", "--workdir", str(workdir), "--json"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    return done.returncode, json.loads(done.stdout)


def test_demo_exits_zero_with_a_verified_receipt(demo: tuple[int, dict[str, object]]) -> None:
    status, result = demo
    assert status == 0
    verification = result["verification"]
    assert isinstance(verification, dict) and verification["valid"] is True


def test_demo_runs_the_body_attested_and_the_head_proven(demo: tuple[int, dict[str, object]]) -> None:
    verification = demo[1]["verification"]
    assert isinstance(verification, dict)
    assert [(s["segment"], s["mode"]) for s in verification["steps"]] == [("body", "tee"), ("head", "zk")]


def test_demo_shows_the_downgraded_copy_rejected(demo: tuple[int, dict[str, object]]) -> None:
    tampered = demo[1]["tampered"]
    assert isinstance(tampered, dict) and tampered["code"] == "COMPOSITE_MODE_DOWNGRADE"
