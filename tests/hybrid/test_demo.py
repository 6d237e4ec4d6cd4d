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
def stale_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An earlier demo's workdir (it holds the marker) with a file the next run must clear away."""
    workdir = tmp_path_factory.mktemp("demo") / "out"
    workdir.mkdir()
    (workdir / ".trustdial-demo").write_text("")
    (workdir / "stale.json").write_text("{}")
    return workdir


@pytest.fixture(scope="module")
def demo(stale_workdir: Path) -> tuple[int, dict[str, object]]:
    workdir = stale_workdir
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


def _recorded(source: str) -> dict[str, object]:
    return {
        "full_zk_s": 180.0,
        "full_zk_logrows": 20,
        "full_zk_source": source,
        "full_zk_measured_at": "2026-11-26T04:20:00Z",
        "full_zk_load_average_1m": {"mean": 3.0, "max": 4.0},
        "boundaries": {
            "private": {"hybrid_s": 1.8, "head_logrows": 11},
            "public": {"hybrid_s": 1.2, "head_logrows": 11},
        },
        "hybrid_s": 1.8,
        "speedup": 100.0,
    }


def test_demo_shows_the_full_zk_ratio_for_both_boundaries() -> None:
    from trustdial.pipeline.demo import full_zk_lines

    text = "\n".join(full_zk_lines(_recorded("measured in this run")))
    assert "private boundary: 1.80 s (head zk at logrows 11) -> 100x <- this pipeline" in text  # 180 / 1.8
    assert "public boundary: 1.20 s (head zk at logrows 11) -> 150x" in text  # 180 / 1.2
    assert "same run" in text


def test_demo_says_when_the_full_zk_numbers_were_not_re_measured() -> None:
    from trustdial.pipeline.demo import full_zk_lines

    text = "\n".join(full_zk_lines(_recorded("recorded 2026-11-26T02:41:28Z")))
    assert "NOT re-measured" in text and "same run" not in text


def test_demo_empties_an_earlier_demos_workdir(demo: tuple[int, dict[str, object]], stale_workdir: Path) -> None:
    assert demo[0] == 0
    assert not (stale_workdir / "stale.json").exists()
    assert (stale_workdir / ".trustdial-demo").is_file() and (stale_workdir / "receipt.json").is_file()


def test_demo_refuses_a_directory_it_did_not_write_and_keeps_its_files(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("years of work")
    done = subprocess.run(
        [str(BIN / "trustdial"), "demo", "--workdir", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert json.loads(done.stdout)["code"] == "DEMO_WORKDIR_NOT_OURS"
    assert (tmp_path / "thesis.tex").read_text() == "years of work"
