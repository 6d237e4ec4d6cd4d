"""The bundle digest as the model's identity in a signed measurement manifest: an enclave reporting an EIF's PCRs
serves the tiny bundle; the manifest pins both, and the offline verifier and the proxy take both from it."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from serve_gateway import BIN, ServeAndGateway, start_process, start_serve_and_gateway, stop_process
from trustdial_verifier._internal.llm.bundle import read_manifest

from infra.measurements.create import create_manifest
from infra.measurements.signers import LocalKeySigner
from infra.measurements.signing import sign_manifest
from llm.conftest import client
from llm.stack import TINY

EIF = Path(__file__).parents[1] / "data" / "eif" / "kat1.rust.eif"
BODY = {"model": "tiny", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 6, "temperature": 0}


def _manifest(work: Path, digest: str, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    manifest = create_manifest(eif=EIF, source_revision="test", build_time="2026-12-07T00:00:00Z", blobs={},
                               models={"tiny": {"sha256": digest}})  # fmt: skip
    (work / f"{name}.cose").write_bytes(sign_manifest(manifest, LocalKeySigner(pem)))
    signer = work / f"{name}-signer.pem"
    signer.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return work / f"{name}.cose", signer


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeAndGateway, Path]]:
    work = tmp_path_factory.mktemp("measured-llm")
    stack = start_serve_and_gateway([], EIF, work / "root.pem", serve_args=["--llm", f"tiny={TINY}"])
    try:
        yield stack, work
    finally:
        stack.stop()


def test_the_manifest_pins_pcrs_and_bundle_for_the_offline_verifier_and_the_proxy(
    measured: tuple[ServeAndGateway, Path],
) -> None:
    stack, work = measured
    digest = read_manifest(TINY).digest().hex()
    manifest, signer = _manifest(work, digest, "good")
    wrong, wrong_signer = _manifest(work, "00" * 32, "wrong")
    answer = httpx.post(stack.url + "/v1/chat/completions", json=BODY, timeout=60)
    (work / "response.json").write_bytes(answer.content)
    (work / "request.json").write_text(json.dumps(BODY))
    binding = httpx.get(stack.url + "/v1/attestation", params={"nonce": "01"}, timeout=30).json()["binding"]
    (work / "binding.cose").write_bytes(base64.b64decode(binding))

    def verify(cose: Path, key: Path) -> dict[str, object]:
        done = subprocess.run(
            [BIN / "trustdial-verify", "chat", work / "response.json", "--request", work / "request.json",
             "--attestation", work / "binding.cose", "--manifest", cose, "--manifest-key", key,
             "--root", work / "root.pem", "--json"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        return {"status": done.returncode, **json.loads(done.stdout)}

    good = verify(manifest, signer)
    assert good["status"] == 0 and good["bundle_digest"] == digest
    bad = verify(wrong, wrong_signer)
    assert (bad["status"], bad["code"]) == (1, "RECEIPT_MODEL_MISMATCH")
    proxy, ready = start_process([BIN / "trustdial-verify", "proxy", "--upstream", stack.url, "--manifest", manifest,
                                  "--manifest-key", signer, "--root", work / "root.pem"])  # fmt: skip
    try:
        verified = client(ready["url"]).chat.completions.create(**BODY)  # type: ignore[call-overload]
        assert verified.model_extra["trustdial_verified"] is True
    finally:
        stop_process(proxy)
