"""``trustdial demo`` (interim attestation-only demo) passes and reports the expected outcomes."""

from __future__ import annotations

import json

import pytest

from trustdial.cli import main


def test_demo_passes_with_expected_outcomes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["demo"] == "attestation-only"
    outcomes = [check["accepted"] for check in result["checks"].values()]
    assert outcomes == [True, False, False]
    assert result["passed"] is True


def test_demo_prints_a_verdict_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "attestation-only" in lines[0]
    assert lines[-1].startswith("VERDICT: PASS")
