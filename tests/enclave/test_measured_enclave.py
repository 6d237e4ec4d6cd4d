"""A simulated enclave that reports the PCRs measured from an EIF (``--simulated-pcrs-from
EIF``), checked against the upstream nitro-cli measurements of that EIF, and receipts checked
offline against a signed measurement manifest of the same EIF."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from trustdial_verifier._internal.client import Client, ExpectedEnclave
from trustdial_verifier._internal.tensors import Tensor

from enclave.live_service import LiveService, ModelFiles, start_service, stop_service
from infra.measurements.create import create_manifest
from infra.measurements.signers import LocalKeySigner
from infra.measurements.signing import sign_manifest

EIF = Path(__file__).parents[1] / "data" / "eif" / "kat1.rust.eif"
UPSTREAM = json.loads((Path(__file__).parents[1] / "data" / "eif" / "kat1.rust.measurements.json").read_text())
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def measured(model_files: ModelFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    service = start_service(model_files, tmp_path_factory.mktemp("measured"), pcrs_from=EIF)
    try:
        yield service
    finally:
        stop_service(service)


def _upstream_pcrs() -> dict[int, bytes]:
    return {int(k.removeprefix("PCR")): bytes.fromhex(v) for k, v in UPSTREAM.items() if k.startswith("PCR")}


def test_enclave_started_from_an_eif_attests_its_published_pcrs(measured: LiveService) -> None:
    expected = ExpectedEnclave(pcrs=_upstream_pcrs(), models=measured.models, root=measured.root)
    with Client(measured.url, expected) as client:
        result = client.infer("mlp", {"x": Tensor.from_array(np.ones((1, 16), np.float32))})
    assert result.statement.model == measured.models["mlp"]


def test_receipt_verifies_offline_against_a_signed_manifest(measured: LiveService, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    manifest = create_manifest(
        eif=EIF,
        source_revision="test",
        build_time="2026-11-26T00:00:00Z",
        blobs={},
        models={"mlp": {"sha256": measured.models["mlp"].hex()}},
    )
    (tmp_path / "manifest.cose").write_bytes(sign_manifest(manifest, LocalKeySigner(pem)))
    (tmp_path / "signer.pem").write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    request = {
        "model": "mlp",
        "inputs": {"x": {"dtype": "float32", "shape": [1, 16], "data": base64.b64encode(bytes(64)).decode()}},
        "include_attestation": True,
    }
    response = httpx.post(f"{measured.url}/v1/infer", json=request, timeout=30)
    (tmp_path / "request.json").write_text(json.dumps(request))
    (tmp_path / "response.json").write_text(response.text)
    (tmp_path / "root.pem").write_bytes(measured.root.public_bytes(serialization.Encoding.PEM))
    done = subprocess.run(
        [str(BIN / "trustdial-verify"), "receipt", str(tmp_path / "response.json"),
         "--request", str(tmp_path / "request.json"), "--manifest", str(tmp_path / "manifest.cose"),
         "--manifest-key", str(tmp_path / "signer.pem"), "--root", str(tmp_path / "root.pem"), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["model_sha256"] == measured.models["mlp"].hex()
