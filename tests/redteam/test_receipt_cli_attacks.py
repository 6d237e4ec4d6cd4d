"""Attacks on ``trustdial-verify receipt``: hostile response/request files and arguments must end in
exactly one JSON object with a typed code (exit 1 rejected, 2 usage), never a traceback or "valid"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from redteam_support import MODEL_SHA256, ReceiptEnclave, write_infer_evidence
from trustdial_verifier._internal.cli import main


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_infer_evidence(ReceiptEnclave(), tmp_path_factory.mktemp("receipt-evidence"))


def _run(
    capsys: pytest.CaptureFixture[str], evidence: dict[str, Path], **replace: object
) -> tuple[int, dict[str, object]]:
    options = {
        "response": evidence["response"],
        "--request": evidence["request"],
        "--pcrs": evidence["pcrs"],
        "--root": evidence["root"],
        "--model-sha256": MODEL_SHA256.hex(),
    }
    options.update(replace)
    argv = ["receipt", str(options.pop("response"))]
    for flag, value in options.items():
        argv += [flag, str(value)]
    status = main([*argv, "--json"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    return status, json.loads(lines[0])


def _write(tmp_path: Path, name: str, content: bytes | str | object) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))
    return path


def _response(evidence: dict[str, Path]) -> dict[str, object]:
    value = json.loads(evidence["response"].read_text())
    assert isinstance(value, dict)
    return value


def test_genuine_evidence_is_valid(capsys: pytest.CaptureFixture[str], evidence: dict[str, Path]) -> None:
    status, result = _run(capsys, evidence)
    assert (status, result["valid"]) == (0, True)


def test_pcrs_file_with_a_non_numeric_index_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], evidence: dict[str, Path], tmp_path: Path
) -> None:
    pcrs = _write(tmp_path, "pcrs.json", {"zero": "00" * 48})
    status, result = _run(capsys, evidence, **{"--pcrs": pcrs})
    assert (status, result["code"]) == (2, "BAD_PCR")


def test_pcr_flag_with_a_unicode_digit_index_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], evidence: dict[str, Path]
) -> None:
    status, result = _run(capsys, evidence, **{"--pcr": "\u00b2=" + "00" * 48})
    assert (status, result["code"]) == (2, "BAD_PCR")


def test_root_that_is_not_pem_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], evidence: dict[str, Path], tmp_path: Path
) -> None:
    status, result = _run(capsys, evidence, **{"--root": _write(tmp_path, "root.pem", "not a certificate")})
    assert (status, result["code"]) == (2, "BAD_ROOT")


def test_response_that_is_not_utf8_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], evidence: dict[str, Path], tmp_path: Path
) -> None:
    status, result = _run(capsys, evidence, response=_write(tmp_path, "r.json", b'{"receipt": "\xff"}'))
    assert (status, result["code"]) == (2, "BAD_JSON")


def test_response_nested_beyond_the_json_parsers_recursion_limit_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], evidence: dict[str, Path], tmp_path: Path
) -> None:
    status, result = _run(capsys, evidence, response=_write(tmp_path, "r.json", "[" * 100_000 + "]" * 100_000))
    assert (status, result["code"]) == (2, "BAD_JSON")


def test_output_tensor_with_a_dimension_beyond_64_bits_is_rejected(
    capsys: pytest.CaptureFixture[str], evidence: dict[str, Path], tmp_path: Path
) -> None:
    response = _response(evidence)
    response["outputs"] = {"y": {"dtype": "int64", "shape": [0, 2**70], "data": ""}}
    status, result = _run(capsys, evidence, response=_write(tmp_path, "r.json", response))
    assert (status, result["code"]) == (1, "TENSOR_SHAPE")


def test_completion_id_beyond_int64_is_bad_evidence(
    capsys: pytest.CaptureFixture[str], evidence: dict[str, Path], tmp_path: Path
) -> None:
    request = _write(tmp_path, "q.json", {"model": "m", "prompt_ids": [1, 2], "nonce": "00"})
    response = _response(evidence)
    response["completion_ids"] = [2**70]
    status, result = _run(capsys, evidence, response=_write(tmp_path, "r.json", response), **{"--request": request})
    assert (status, result["code"]) == (2, "BAD_EVIDENCE")


def test_outputs_swapped_for_other_tensors_are_rejected(
    capsys: pytest.CaptureFixture[str], evidence: dict[str, Path], tmp_path: Path
) -> None:
    response = _response(evidence)
    response["outputs"] = {"y": {"dtype": "int64", "shape": [1], "data": "CAAAAAAAAAA="}}  # 8 instead of 7
    status, result = _run(capsys, evidence, response=_write(tmp_path, "r.json", response))
    assert (status, result["code"]) == (1, "RECEIPT_OUTPUT_MISMATCH")


def test_output_renamed_is_rejected(
    capsys: pytest.CaptureFixture[str], evidence: dict[str, Path], tmp_path: Path
) -> None:
    response = _response(evidence)
    outputs = response["outputs"]
    assert isinstance(outputs, dict)
    response["outputs"] = {"z": outputs["y"]}
    status, result = _run(capsys, evidence, response=_write(tmp_path, "r.json", response))
    assert (status, result["code"]) == (1, "RECEIPT_OUTPUT_MISMATCH")


def test_request_nonce_other_than_the_signed_one_is_rejected(
    capsys: pytest.CaptureFixture[str], evidence: dict[str, Path], tmp_path: Path
) -> None:
    request = json.loads(evidence["request"].read_text())
    request["nonce"] = "ff" * 16
    status, result = _run(capsys, evidence, **{"--request": _write(tmp_path, "q.json", request)})
    assert (status, result["code"]) == (1, "RECEIPT_NONCE_MISMATCH")


def test_request_without_a_nonce_does_not_match_a_signed_nonce(
    capsys: pytest.CaptureFixture[str], evidence: dict[str, Path], tmp_path: Path
) -> None:
    request = json.loads(evidence["request"].read_text())
    del request["nonce"]
    status, result = _run(capsys, evidence, **{"--request": _write(tmp_path, "q.json", request)})
    assert (status, result["code"]) == (1, "RECEIPT_NONCE_MISMATCH")


def test_min_seq_above_the_receipts_sequence_number_is_a_rollback(
    capsys: pytest.CaptureFixture[str], evidence: dict[str, Path]
) -> None:
    status, result = _run(capsys, evidence, **{"--min-seq": 2})
    assert (status, result["code"]) == (1, "RECEIPT_SEQUENCE_ROLLBACK")


def test_attestation_from_another_enclave_with_the_same_pcrs_is_rejected(
    capsys: pytest.CaptureFixture[str], evidence: dict[str, Path], tmp_path: Path
) -> None:
    other = ReceiptEnclave()
    response = _response(evidence)
    response["attestation"] = json.loads(write_infer_evidence(other, tmp_path)["response"].read_text())["attestation"]
    status, result = _run(
        capsys, evidence, response=_write(tmp_path, "r.json", response), **{"--root": tmp_path / "root.pem"}
    )
    assert status == 1
    assert result["valid"] is False
