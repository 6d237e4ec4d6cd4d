"""Red team, round 2: ``trustdial-verify receipt`` on composite receipts. Hostile arguments must end
in one JSON object with a typed code (exit 1 rejected, 2 usage), never a traceback, and no flag may
be accepted and then silently not checked."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from redteam_support import MODEL_SHA256, ReceiptEnclave, write_infer_evidence
from trustdial_verifier._internal.cli import main

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


def test_verification_time_without_a_maximum_age_checks_nothing_and_is_refused(
    private: Any, private_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # --at only dates the --max-age check; alone it was accepted and checked nothing.
    status, result = _run(capsys, _args(private, private_run, "--at", str(int(time.time()) + 86_400)))
    assert (status, result["code"]) == (2, "FLAG_NOT_APPLICABLE")


def test_verification_time_a_day_later_with_a_maximum_age_is_stale(
    private: Any, private_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    status, result = _run(
        capsys, _args(private, private_run, "--at", str(int(time.time()) + 86_400), "--max-age", "60")
    )
    assert (status, result["code"]) == (1, "COMPOSITE_RECEIPT_STALE")


@pytest.mark.parametrize(
    "flag",
    [
        ["--pcr", "0=" + "00" * 48],
        ["--model-sha256", "00" * 32],
        ["--min-seq", "1000000"],
        ["--pcrs", "pcrs.json"],
        ["--request", "request.json"],
        ["--attestation", "attestation.cbor"],
    ],
    ids=lambda flag: flag[0],
)
def test_single_receipt_expectation_given_for_a_composite_receipt_is_refused_not_ignored(
    flag: list[str], private: Any, private_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # Each of these was accepted and ignored: e.g. --pcr 0=<another image> still printed valid.
    status, result = _run(capsys, _args(private, private_run, *flag))
    assert (status, result["code"]) == (2, "FLAG_NOT_APPLICABLE")


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


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_infer_evidence(ReceiptEnclave(), tmp_path_factory.mktemp("single-receipt"))


def _single_args(single: dict[str, Path], *extra: str | Path) -> list[str | Path]:
    return [
        single["response"], "--request", single["request"], "--pcrs", single["pcrs"], "--root", single["root"],
        "--model-sha256", MODEL_SHA256.hex(), "--json", *extra,
    ]  # fmt: skip


def test_genuine_single_receipt_is_valid(single: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    status, result = _run(capsys, _single_args(single))
    assert (status, result["valid"]) == (0, True)


@pytest.mark.parametrize(
    "flag",
    [
        ["--max-age", "60"],
        ["--at", "now"],
        ["--policy", "pipeline.toml"],
        ["--zk-artifacts", "zk"],
        ["--max-attestation-age", "60"],
        ["--allow-dev-srs"],
    ],
    ids=lambda flag: flag[0],
)
def test_composite_check_given_for_a_single_receipt_is_refused_not_ignored(
    flag: list[str], single: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # e.g. --max-age 60 on a single TEE receipt was accepted and no age was checked.
    status, result = _run(capsys, _single_args(single, *flag))
    assert (status, result["code"]) == (2, "FLAG_NOT_APPLICABLE")


def test_the_receipt_of_another_request_is_refused_when_the_nonce_sent_is_given(
    private: Any, private_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # Without an expected nonce, any earlier genuine receipt verified as the answer to a new request.
    from hybrid.hybrid_setup import PRIVATE_RUN_NONCE

    status, result = _run(capsys, _args(private, private_run, "--nonce", PRIVATE_RUN_NONCE))
    assert (status, result["valid"]) == (0, True)
    status, result = _run(capsys, _args(private, private_run, "--nonce", PRIVATE_RUN_NONCE.upper()))
    assert (status, result["valid"]) == (0, True)
    status, result = _run(capsys, _args(private, private_run, "--nonce", "a1" * 32))
    assert (status, result["code"]) == (1, "COMPOSITE_NONCE_MISMATCH")


@pytest.mark.parametrize("nonce", ["", "5e" * 31, "5e" * 33, "zz" * 32])
def test_a_nonce_that_is_not_64_hex_digits_is_a_usage_error(
    nonce: str, private: Any, private_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    status, result = _run(capsys, _args(private, private_run, f"--nonce={nonce}"))
    assert (status, result["code"]) == (2, "BAD_NONCE")


def _strict_json(line: str) -> dict[str, Any]:
    """json.loads accepts Infinity and NaN; the --json contract is RFC 8259 JSON, which has neither."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"--json printed the non-JSON constant {name}")

    result: dict[str, Any] = json.loads(line, parse_constant=refuse)
    return result


@pytest.mark.parametrize("seconds", ["1e400", "1" + "0" * 400, "-1"], ids=["overflows-float", "huge-int", "negative"])
def test_stated_cost_that_is_not_a_sane_number_is_refused_with_valid_json(
    seconds: str, private: Any, private_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: 1e400 parsed to inf and --json printed "seconds": Infinity (exit 0); 10**400 raised
    # OverflowError out of float() (a traceback, nothing on stdout).
    text = private_run[0].read_text()
    document = json.loads(text)
    document["steps"][0]["cost"] = {"seconds": "SECONDS"}
    receipt = private_run[0].with_name(f"cost-{seconds[:8]}.json")
    receipt.write_text(json.dumps(document).replace('"SECONDS"', seconds))
    status = main(["receipt", *map(str, _args(private, (receipt, private_run[1])))])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    result = _strict_json(lines[0])
    assert (status, result["valid"], result["code"]) == (1, False, "COMPOSITE_MALFORMED")
