"""``trustdial-verify receipt``: saved request + gateway response verified offline."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from enclave.live_service import LiveService

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def evidence(live: LiveService, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("evidence")
    x = np.arange(16, dtype=np.float32).reshape(1, 16)
    request = {
        "model": "mlp",
        "inputs": {"x": {"dtype": "float32", "shape": [1, 16], "data": base64.b64encode(x.tobytes()).decode()}},
        "nonce": "00112233445566778899aabbccddeeff",
        "include_attestation": True,
    }
    response = httpx.post(f"{live.url}/v1/infer", json=request, timeout=30)
    assert response.status_code == 200, response.text
    (directory / "request.json").write_text(json.dumps(request))
    (directory / "response.json").write_text(response.text)
    (directory / "root.pem").write_bytes(live.root.public_bytes(Encoding.PEM))
    (directory / "pcrs.json").write_text(json.dumps({str(i): v.hex() for i, v in live.pcrs.items()}))
    return directory


def _verify(
    live: LiveService, evidence: Path, *extra: str, response: str = "response.json"
) -> subprocess.CompletedProcess[str]:
    args = [
        str(BIN / "trustdial-verify"), "receipt", str(evidence / response), "--request", str(evidence / "request.json"),
        "--root", str(evidence / "root.pem"), "--model-sha256", live.models["mlp"].hex(), "--json", *extra,
    ]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def test_saved_evidence_verifies(live: LiveService, evidence: Path) -> None:
    done = _verify(live, evidence, "--pcrs", str(evidence / "pcrs.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["valid"] is True


def test_tampered_output_is_exit_1(live: LiveService, evidence: Path) -> None:
    response = json.loads((evidence / "response.json").read_text())
    y = np.frombuffer(base64.b64decode(response["outputs"]["y"]["data"]), np.float32) * 2
    response["outputs"]["y"]["data"] = base64.b64encode(y.tobytes()).decode()
    (evidence / "tampered.json").write_text(json.dumps(response))
    done = _verify(live, evidence, "--pcrs", str(evidence / "pcrs.json"), response="tampered.json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["code"] == "RECEIPT_OUTPUT_MISMATCH"


def test_wrong_pcr_is_exit_1(live: LiveService, evidence: Path) -> None:
    done = _verify(live, evidence, "--pcr", "0=" + "00" * 47 + "01")
    assert done.returncode == 1
    assert json.loads(done.stdout)["code"] == "PCR_MISMATCH"


def test_missing_expected_pcrs_is_a_usage_error(live: LiveService, evidence: Path) -> None:
    done = _verify(live, evidence)
    assert done.returncode == 2
    assert json.loads(done.stdout)["code"] == "NO_EXPECTED_PCRS"
