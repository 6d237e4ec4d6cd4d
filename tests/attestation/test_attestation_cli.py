"""``trustdial-verify attestation``: input forms, options, exit statuses and the --json contract."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from attestation_vectors import GENUINE, SIM_TIME, Vector
from trustdial_verifier._internal.cli import main

from enclave_app.nsm.simulated import SimulatedNsm

BIN = Path(sys.executable).parent
MARLIN = next(v for v in GENUINE if v.name == "marlin_oyster_aws_2024-12-13.cbor")
DEBUG = next(v for v in GENUINE if v.name == "blocky_nitrite_nitro_attestation_debug_2024-09-07.cbor")
SUCCESS_KEYS = ["valid", "module_id", "timestamp", "digest", "pcrs", "debug_mode", "public_key", "user_data", "nonce"]


def pcr_args(vector: Vector, indices: tuple[int, ...] = (0, 1, 2)) -> list[str]:
    return [arg for index in indices for arg in ("--pcr", f"{index}={vector.pcrs[index].hex()}")]


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, object]]:
    status = main(["attestation", *argv, "--json"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    return status, json.loads(lines[0])


@pytest.fixture
def marlin_file(tmp_path: Path) -> Path:
    path = tmp_path / "doc.cbor"
    path.write_bytes(MARLIN.raw)
    return path


def test_genuine_document_valid_at_doc_time_with_exact_json_keys(
    capsys: pytest.CaptureFixture[str], marlin_file: Path
) -> None:
    status, report = run_json(capsys, [str(marlin_file), "--at", "doc", *pcr_args(MARLIN)])
    assert status == 0
    assert list(report) == SUCCESS_KEYS
    assert report["valid"] is True
    assert report["timestamp"] == 1734075478960
    assert report["pcrs"] == {str(i): v.hex() for i, v in MARLIN.pcrs.items()}  # type: ignore[comparison-overlap]
    public_key = str(report["public_key"])  # INDEX.md: e646f8b0...f4bb, 64 bytes (Marlin's own test)
    assert public_key.startswith("e646f8b0") and public_key.endswith("f4bb") and len(public_key) == 128
    assert report["nonce"] is None and report["user_data"] is None


@pytest.mark.parametrize("encoding", ["hex", "base64", "base64url"])
def test_text_encoded_document_is_detected(capsys: pytest.CaptureFixture[str], tmp_path: Path, encoding: str) -> None:
    text = {
        "hex": MARLIN.raw.hex(),
        "base64": base64.b64encode(MARLIN.raw).decode(),
        "base64url": base64.urlsafe_b64encode(MARLIN.raw).decode().rstrip("="),
    }[encoding]
    path = tmp_path / "doc.txt"
    path.write_text("\n".join(text[i : i + 76] for i in range(0, len(text), 76)) + "\n")
    status, report = run_json(capsys, [str(path), "--at", "doc", *pcr_args(MARLIN)])
    assert (status, report["valid"]) == (0, True)


def test_stdin_document_accepted() -> None:
    done = subprocess.run(
        [str(BIN / "trustdial-verify"), "attestation", "-", "--at", "doc", *pcr_args(MARLIN), "--json"],
        input=base64.b64encode(MARLIN.raw),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["valid"] is True


def test_default_time_is_now_so_old_document_is_rejected(capsys: pytest.CaptureFixture[str], marlin_file: Path) -> None:
    status, report = run_json(capsys, [str(marlin_file), *pcr_args(MARLIN)])
    assert status == 1
    assert report == {"valid": False, "code": "CERT_TIME", "reason": report["reason"]}


@pytest.mark.parametrize("form", ["iso", "iso_z", "unix"])
def test_explicit_time_forms_accepted(capsys: pytest.CaptureFixture[str], marlin_file: Path, form: str) -> None:
    at = {"iso": "2024-12-13T07:38:00+00:00", "iso_z": "2024-12-13T07:38:00Z", "unix": "1734075480"}[form]
    status, _ = run_json(capsys, [str(marlin_file), "--at", at, *pcr_args(MARLIN)])
    assert status == 0


def test_one_day_later_is_rejected(capsys: pytest.CaptureFixture[str], marlin_file: Path) -> None:
    status, report = run_json(capsys, [str(marlin_file), "--at", str(1734075478 + 86400), *pcr_args(MARLIN)])
    assert (status, report["code"]) == (1, "CERT_TIME")


def test_pcr_mismatch_is_rejected_with_code(capsys: pytest.CaptureFixture[str], marlin_file: Path) -> None:
    status, report = run_json(capsys, [str(marlin_file), "--at", "doc", "--pcr", "0=" + "00" * 48])
    assert (status, report["code"]) == (1, "PCR_MISMATCH")


def test_no_expectation_is_a_usage_error(capsys: pytest.CaptureFixture[str], marlin_file: Path) -> None:
    status, report = run_json(capsys, [str(marlin_file), "--at", "doc"])
    assert (status, report["code"]) == (2, "NO_EXPECTATIONS")


def test_max_age_alone_is_not_an_expectation(capsys: pytest.CaptureFixture[str], marlin_file: Path) -> None:
    status, report = run_json(capsys, [str(marlin_file), "--at", "doc", "--max-age", "60"])
    assert (status, report["code"]) == (2, "NO_EXPECTATIONS")


def test_max_age_exceeded_is_rejected(capsys: pytest.CaptureFixture[str], marlin_file: Path) -> None:
    at = str(1734075478 + 600)
    status, report = run_json(capsys, [str(marlin_file), "--at", at, "--max-age", "300", *pcr_args(MARLIN)])
    assert (status, report["code"]) == (1, "STALE")


def test_debug_document_needs_allow_debug(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "debug.cbor"
    path.write_bytes(DEBUG.raw)
    status, report = run_json(capsys, [str(path), "--at", "doc", *pcr_args(DEBUG, (0, 4))])
    assert (status, report["code"]) == (1, "DEBUG_MODE")
    status, report = run_json(capsys, [str(path), "--at", "doc", *pcr_args(DEBUG, (0, 4)), "--allow-debug"])
    assert (status, report["debug_mode"]) == (0, True)


def test_simulator_document_needs_its_root(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    nsm = SimulatedNsm(clock=lambda: SIM_TIME)
    nonce = b"\x42" * 32
    (tmp_path / "doc.cbor").write_bytes(nsm.attest(nonce=nonce, user_data=b"ud", public_key=b"pk"))
    (tmp_path / "root.pem").write_bytes(nsm.root_pem)
    args = [str(tmp_path / "doc.cbor"), "--at", "doc", "--nonce", nonce.hex(), "--user-data", b"ud".hex()]
    args += ["--public-key", b"pk".hex()]
    status, report = run_json(capsys, args)
    assert (status, report["code"]) == (1, "CHAIN_ROOT_MISMATCH")
    status, report = run_json(capsys, [*args, "--root", str(tmp_path / "root.pem")])
    assert (status, report["nonce"], report["user_data"], report["public_key"]) == (0, nonce.hex(), "7564", "706b")


def test_nonce_mismatch_is_rejected(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    nsm = SimulatedNsm(clock=lambda: SIM_TIME)
    (tmp_path / "doc.cbor").write_bytes(nsm.attest(nonce=b"a"))
    (tmp_path / "root.pem").write_bytes(nsm.root_pem)
    argv = [str(tmp_path / "doc.cbor"), "--at", "doc", "--nonce", "62", "--root", str(tmp_path / "root.pem")]
    status, report = run_json(capsys, argv)
    assert (status, report["code"]) == (1, "NONCE_MISMATCH")


def test_missing_file_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, report = run_json(capsys, [str(tmp_path / "absent"), "--pcr", "0=00"])
    assert (status, report["code"]) == (2, "FILE_NOT_FOUND")


@pytest.mark.parametrize("bad", ["0=zz", "x=00", "000", "0=00 --pcr 0=00"])
def test_malformed_pcr_is_a_usage_error(capsys: pytest.CaptureFixture[str], marlin_file: Path, bad: str) -> None:
    status, report = run_json(capsys, [str(marlin_file), "--at", "doc", *[f"--pcr={p}" for p in bad.split(" --pcr ")]])
    assert (status, report["code"]) in {(2, "BAD_HEX"), (2, "BAD_PCR")}


def test_bad_time_is_a_usage_error(capsys: pytest.CaptureFixture[str], marlin_file: Path) -> None:
    status, report = run_json(capsys, [str(marlin_file), "--at", "yesterday", *pcr_args(MARLIN)])
    assert (status, report["code"]) == (2, "BAD_TIME")


def test_garbage_document_is_rejected_not_crashed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "garbage.bin"
    path.write_bytes(b"\x84\xff\x00garbage")
    status, report = run_json(capsys, [str(path), "--pcr", "0=00"])
    assert status == 1 and str(report["code"]).startswith(("CBOR_", "COSE_"))


def test_text_output_names_the_verdict(capsys: pytest.CaptureFixture[str], marlin_file: Path) -> None:
    assert main(["attestation", str(marlin_file), "--at", "doc", *pcr_args(MARLIN)]) == 0
    assert capsys.readouterr().out.startswith("VALID")


def test_max_age_with_doc_time_is_a_usage_error(capsys: pytest.CaptureFixture[str], marlin_file: Path) -> None:
    status, report = run_json(capsys, [str(marlin_file), "--at", "doc", "--max-age", "60", *pcr_args(MARLIN)])
    assert (status, report["code"]) == (2, "MAX_AGE_WITH_DOC_TIME")
