"""Attacks on ``trustdial-verify attestation``: flags that silently drop a check, and bad arguments
that must end in a typed usage error (exit 2, one JSON object) rather than a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from redteam_support import MARLIN_FILE, fixed_nsm, genuine
from trustdial_verifier._internal.cli import main

MARLIN = genuine(MARLIN_FILE.name)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    status = main(["attestation", str(MARLIN_FILE), *argv, "--json"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    return status, json.loads(lines[0])


def _pcr0() -> str:
    return f"0={MARLIN.pcrs[0].hex()}"


def test_max_age_is_not_silently_void_when_verifying_at_the_documents_own_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The document is from 2024-12; with --at doc its age "at the verification time" is always 0.
    status, result = _run(capsys, "--pcr", _pcr0(), "--at", "doc", "--max-age", "60")
    assert status == 2
    assert result["valid"] is False
    assert result["code"] == "MAX_AGE_WITH_DOC_TIME"


@pytest.mark.parametrize("index", ["\u00b2", "\u2460", "\u0663\u00b9"], ids=["superscript", "circled", "mixed"])
def test_pcr_index_of_unicode_digits_is_a_usage_error(capsys: pytest.CaptureFixture[str], index: str) -> None:
    status, result = _run(capsys, "--pcr", f"{index}={MARLIN.pcrs[0].hex()}")
    assert status == 2
    assert result["code"] == "BAD_PCR"


def test_pcr_index_beyond_31_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, result = _run(capsys, "--pcr", f"32={MARLIN.pcrs[0].hex()}")
    assert (status, result["code"]) == (2, "PCR_INDEX")


def test_empty_expected_pcr_value_does_not_match(capsys: pytest.CaptureFixture[str]) -> None:
    status, result = _run(capsys, "--pcr", "0=", "--at", "doc")
    assert (status, result["code"]) == (1, "PCR_MISMATCH")


def test_expected_pcr_prefix_does_not_match(capsys: pytest.CaptureFixture[str]) -> None:
    status, result = _run(capsys, "--pcr", f"0={MARLIN.pcrs[0].hex()[:48]}", "--at", "doc")
    assert (status, result["code"]) == (1, "PCR_MISMATCH")


def test_nan_max_age_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, result = _run(capsys, "--pcr", _pcr0(), "--max-age", "nan")
    assert (status, result["code"]) == (2, "MAX_AGE")


@pytest.mark.parametrize("flag", ["--nonce", "--user-data"])
@pytest.mark.parametrize("value", ["", "0x"], ids=["empty", "bare-prefix"])
def test_empty_expected_value_is_not_an_expectation(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flag: str, value: str
) -> None:
    # Any enclave can ask its NSM for a document with an empty nonce/user_data; "expecting" empty
    # bytes would accept it whatever its PCRs.
    nsm = fixed_nsm()
    document = tmp_path / "doc.cbor"
    document.write_bytes(nsm.attest(nonce=b"", user_data=b""))
    root = tmp_path / "root.pem"
    root.write_bytes(nsm.root_pem)
    status = main(["attestation", str(document), "--root", str(root), "--at", "doc", flag, value, "--json"])
    result = json.loads(capsys.readouterr().out)
    assert (status, result["code"]) == (2, "EMPTY_EXPECTATION")
