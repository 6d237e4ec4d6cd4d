"""Red team, round 2: ``trustdial-verify receipt`` on composite receipts. Hostile arguments must end
in one JSON object with a typed code (exit 1 rejected, 2 usage), never a traceback, and no flag may
be accepted and then silently not checked."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from verifier.cli import main

pytestmark = pytest.mark.slow


def _run(capsys: pytest.CaptureFixture[str], args: list[str | Path]) -> tuple[int, dict[str, Any]]:
    status = main(["receipt", *map(str, args)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    result: dict[str, Any] = json.loads(lines[0])
    return status, result


def _args(private: Any, private_run: tuple[Path, Path], *extra: str | Path) -> list[str | Path]:
    args: list[str | Path] = private.verify_args(*private_run)
    return [*args, *extra]


def _without(args: list[str | Path], flag: str) -> list[str | Path]:
    position = args.index(flag)
    return [*args[:position], *args[position + 2 :]]


def test_genuine_composite_receipt_is_valid(
    private: Any, private_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    status, result = _run(capsys, _args(private, private_run))
    assert (status, result["valid"]) == (0, True)


@pytest.mark.parametrize("at", ["inf", "-inf", "1e400", "nan"])
def test_verification_time_that_is_not_a_finite_number_is_a_usage_error(
    at: str, private: Any, private_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # --at inf raised OverflowError out of the command: a traceback and exit 1 with nothing on stdout.
    status, result = _run(capsys, _args(private, private_run, f"--at={at}", "--max-age", "60"))
    assert (status, result["code"]) == (2, "BAD_TIME")


def test_verification_time_a_day_later_with_a_maximum_age_is_stale(
    private: Any, private_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    status, result = _run(
        capsys, _args(private, private_run, "--at", str(int(time.time()) + 86_400), "--max-age", "60")
    )
    assert (status, result["code"]) == (1, "COMPOSITE_RECEIPT_STALE")


def test_composite_receipt_without_zk_artifacts_is_a_usage_error_not_a_skipped_proof(
    private: Any, private_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    status, result = _run(capsys, _without(_args(private, private_run), "--zk-artifacts"))
    assert (status, result["code"]) == (2, "ZK_ARTIFACTS_MISSING")


def test_composite_receipt_without_the_manifest_key_is_a_usage_error(
    private: Any, private_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    status, result = _run(capsys, _without(_args(private, private_run), "--manifest-key"))
    assert (status, result["code"]) == (2, "MISSING_ARGUMENT")
