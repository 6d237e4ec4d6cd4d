"""Sealed models through KMS, end to end on loopback (issue 18): the enclave's KMS ``Decrypt`` with an attested
``Recipient`` goes through a real TCP forwarder process (the vsock-proxy stand-in) to a KMS-compatible HTTPS server
(tests/kms_loopback.py) that checks SigV4 with botocore, the attestation document with the verifier (the simulated
NSM's root as trust root), and the key policy **this CDK app synthesized** (its PCR conditions), and answers with
``openssl cms -encrypt`` output. Credentials come from IMDS (a stand-in) through the real ``trustdial
host-credentials`` process. Every refusal is typed and loads nothing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from infra_testkit import CURRENT_PCRS, NEXT_PCRS, SynthesizedApp, label_pcr, only_resource
from kms_loopback import (
    ALIAS,
    HOST_ROLE_ARN,
    OPERATOR_ARN,
    REGION,
    Imds,
    KeyPolicy,
    KmsState,
    imds_server,
    kms_server,
)
from serve_gateway import BIN, start_process, stop_process

from enclave_app.addresses import parse_address
from enclave_app.host_credentials import CredentialCache, CredentialServer, ImdsCredentialSource
from enclave_app.nsm.simulated import SimulatedNsm
from enclave_app.reference_models import build_mlp
from enclave_app.sealed.credentials import AwsCredentials
from enclave_app.sealed.errors import SealedModelError
from enclave_app.sealed.kms_client import KmsEndpoint
from enclave_app.sealed.serve_options import load_sealed_models
from enclave_app.sealed.unseal import KmsRecipientUnwrapper, unseal
from trustdial.cli import build_parser
from trustdial.model_seal.data_keys import KmsDataKeys
from trustdial.model_seal.seal import seal_model

FORWARDER = Path(__file__).resolve().parents[1] / "tcp_forwarder.py"


def pcr_bytes(pcrs: dict[str, str]) -> dict[int, bytes]:
    return {index: bytes.fromhex(pcrs[f"pcr{index}"]) for index in (0, 1, 2)}


@dataclass
class Loopback:
    state: KmsState
    kms_port: int
    ca_file: Path
    imds: Imds
    imds_url: str
    proxy: str
    capture: Path
    credentials: str

    def client(self, principal: str) -> Any:
        import boto3

        access_key, issued = self.state.issue(principal, timedelta(hours=1))
        return boto3.client("kms", endpoint_url=f"https://127.0.0.1:{self.kms_port}", region_name=REGION,
                            aws_access_key_id=access_key, aws_secret_access_key=issued.secret,
                            aws_session_token=issued.token, verify=str(self.ca_file))  # fmt: skip


@pytest.fixture(scope="module")
def loopback(synthesized: SynthesizedApp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loopback]:
    template = synthesized.templates["enclave_hosts"]
    _, key = only_resource(template, "AWS::KMS::Key")
    role_id, _ = only_resource(template, "AWS::IAM::Role")
    policy = KeyPolicy(key["Properties"]["KeyPolicy"]["Statement"], {role_id: HOST_ROLE_ARN})
    state = KmsState(policy=policy, attestation_root=lambda: None)  # type: ignore[arg-type,return-value]
    capture = tmp_path_factory.mktemp("proxy") / "forwarded.bin"
    imds = Imds(state)
    with kms_server(state) as (port, ca_file), imds_server(imds) as imds_url:
        proxy, proxy_ready = start_process([BIN / "python", FORWARDER, str(port), str(capture)])
        try:
            helper, helper_ready = start_process(
                [BIN / "trustdial", "host-credentials", "--listen", "tcp:127.0.0.1:0", "--imds", imds_url]
            )
        except BaseException:
            stop_process(proxy)
            raise
        try:
            yield Loopback(state, port, ca_file, imds, imds_url, proxy_ready["address"], capture,
                           helper_ready["address"])  # fmt: skip
        finally:
            stop_process(helper)
            stop_process(proxy)


@pytest.fixture
def kms(loopback: Loopback) -> Iterator[Loopback]:
    loopback.state.content_cipher, loopback.state.tamper_recipient_message = "-aes256", False
    loopback.state.log.clear()
    yield loopback


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return build_mlp((4, 8, 2), seed=18)


@pytest.fixture
def sealed(loopback: Loopback, model_bytes: bytes, tmp_path: Path) -> Path:
    source = tmp_path / "bundle"
    source.mkdir()
    (source / "model.onnx").write_bytes(model_bytes)
    (source / "notes.txt").write_bytes(b"weights the model owner does not want the host to hold\n")
    seal_model(source, tmp_path / "sealed", KmsDataKeys(ALIAS, loopback.client(OPERATOR_ARN)))
    return tmp_path / "sealed"


def serve_args(kms: Loopback, sealed: Path, *, credentials: str | None = None) -> Any:
    words = ["serve", "--listen", "tcp:127.0.0.1:0", "--sealed-model", f"secret={sealed}", "--kms", kms.proxy,
             "--region", REGION, "--credentials", credentials or kms.credentials, "--kms-ca-file", str(kms.ca_file)]
    return build_parser(words).parse_args(words)  # fmt: skip


class Recorder:
    def __init__(self) -> None:
        self.loaded: list[tuple[str, bytes]] = []

    def __call__(self, raw: bytes, name: str, path: Path, **_: Any) -> str:
        self.loaded.append((name, hashlib.sha256(raw).digest()))
        return name


def attested_nsm(pcrs: dict[int, bytes], **options: Any) -> SimulatedNsm:
    return SimulatedNsm(pcrs=pcrs, **options)


def unseal_with(kms: Loopback, sealed: Path, nsm: SimulatedNsm, **options: Any) -> Recorder:
    kms.state.attestation_root = lambda: nsm.root_certificate
    recorder = Recorder()
    load_sealed_models(serve_args(kms, sealed, **options), nsm, loader=recorder)
    return recorder


def refused_code(kms: Loopback, sealed: Path, nsm: SimulatedNsm, **options: Any) -> str:
    kms.state.attestation_root = lambda: nsm.root_certificate
    recorder = Recorder()
    with pytest.raises(SealedModelError) as caught:
        load_sealed_models(serve_args(kms, sealed, **options), nsm, loader=recorder)
    assert recorder.loaded == []
    return caught.value.code


@pytest.mark.parametrize("cipher", ["-aes256", "-aes-256-gcm"], ids=["cbc-ber-like-kms", "gcm-auth-enveloped"])
def test_an_attested_enclave_unseals_through_the_proxy(kms: Loopback, sealed: Path, model_bytes: bytes,
                                                       cipher: str) -> None:  # fmt: skip
    kms.state.content_cipher = cipher
    recorder = unseal_with(kms, sealed, attested_nsm(pcr_bytes(CURRENT_PCRS)))
    assert recorder.loaded == [("secret", hashlib.sha256(model_bytes).digest())]
    (decrypt,) = [entry for entry in kms.state.log if entry["target"] == "TrentService.Decrypt"]
    assert decrypt == {"target": "TrentService.Decrypt", "host": "kms.us-east-1.amazonaws.com",
                       "principal": HOST_ROLE_ARN, "recipient": True, "ok": True}  # fmt: skip
    forwarded = kms.capture.read_bytes()
    assert forwarded  # the bytes did go through the proxy process ...
    assert model_bytes[:32] not in forwarded and b"weights the model owner" not in forwarded  # ... as TLS only


def test_the_next_accepted_image_unseals_too(kms: Loopback, sealed: Path, model_bytes: bytes) -> None:
    recorder = unseal_with(kms, sealed, attested_nsm(pcr_bytes(NEXT_PCRS)))
    assert recorder.loaded == [("secret", hashlib.sha256(model_bytes).digest())]


@pytest.mark.parametrize(
    "pcrs",
    [
        {**pcr_bytes(CURRENT_PCRS), 0: bytes.fromhex(label_pcr("another image"))},
        {**pcr_bytes(CURRENT_PCRS), 2: bytes.fromhex(NEXT_PCRS["pcr2"])},  # a mix of two accepted images
        {**pcr_bytes(CURRENT_PCRS), 1: bytes.fromhex(label_pcr("another kernel"))},
    ],
    ids=["wrong-pcr0", "mixed-images", "wrong-pcr1"],
)
def test_wrong_pcrs_are_refused_by_the_key_policy(kms: Loopback, sealed: Path, pcrs: dict[int, bytes]) -> None:
    assert refused_code(kms, sealed, attested_nsm(pcrs)) == "KMS_ACCESS_DENIED"
    assert kms.state.log[-1]["error"] == "AccessDeniedException"


def test_a_debug_mode_enclave_is_refused(kms: Loopback, sealed: Path) -> None:
    assert refused_code(kms, sealed, attested_nsm(pcr_bytes(CURRENT_PCRS), debug=True)) == "KMS_ACCESS_DENIED"


def test_a_document_from_another_nsm_root_is_refused(kms: Loopback, sealed: Path) -> None:
    nsm = attested_nsm(pcr_bytes(CURRENT_PCRS))
    other = SimulatedNsm()
    kms.state.attestation_root = lambda: other.root_certificate
    with pytest.raises(SealedModelError) as caught:
        load_sealed_models(serve_args(kms, sealed), nsm, loader=Recorder())
    assert caught.value.code == "KMS_ERROR" and "invalid attestation document" in caught.value.reason


def test_a_tampered_ciphertext_for_recipient_is_refused(kms: Loopback, sealed: Path) -> None:
    kms.state.tamper_recipient_message = True
    assert refused_code(kms, sealed, attested_nsm(pcr_bytes(CURRENT_PCRS))).startswith("CMS_")


def _edit_header(sealed: Path, edit: Any) -> None:
    header = json.loads((sealed / "header.json").read_bytes())
    edit(header)
    (sealed / "header.json").write_text(json.dumps(header, sort_keys=True, separators=(",", ":")) + "\n")


def test_a_tampered_encrypted_data_key_is_refused_by_kms(kms: Loopback, sealed: Path) -> None:
    import base64

    def flip(header: dict[str, Any]) -> None:
        blob = bytearray(base64.b64decode(header["key"]["encrypted_data_key"]))
        blob[-1] ^= 1
        header["key"]["encrypted_data_key"] = base64.b64encode(bytes(blob)).decode()

    _edit_header(sealed, flip)
    assert refused_code(kms, sealed, attested_nsm(pcr_bytes(CURRENT_PCRS))) == "KMS_INVALID_CIPHERTEXT"


def test_a_changed_encryption_context_is_refused_by_kms(kms: Loopback, sealed: Path) -> None:
    def retarget(header: dict[str, Any]) -> None:
        header["key"]["encryption_context"]["trustdial:model-sha256"] = hashlib.sha256(b"x").hexdigest()

    _edit_header(sealed, retarget)
    assert refused_code(kms, sealed, attested_nsm(pcr_bytes(CURRENT_PCRS))) == "KMS_INVALID_CIPHERTEXT"


def test_a_tampered_header_that_kms_accepts_still_fails_every_file(kms: Loopback, sealed: Path) -> None:
    def rename(header: dict[str, Any]) -> None:
        header["files"][1]["name"] = "renamed.txt"

    _edit_header(sealed, rename)
    assert refused_code(kms, sealed, attested_nsm(pcr_bytes(CURRENT_PCRS))) == "SEALED_TAMPERED"


def test_a_tampered_file_is_refused_after_kms(kms: Loopback, sealed: Path) -> None:
    blob = bytearray((sealed / "0000.sealed").read_bytes())
    blob[0] ^= 0x10
    (sealed / "0000.sealed").write_bytes(bytes(blob))
    assert refused_code(kms, sealed, attested_nsm(pcr_bytes(CURRENT_PCRS))) == "SEALED_TAMPERED"


def test_a_plaintext_digest_mismatch_is_refused(kms: Loopback, tmp_path: Path) -> None:
    """A sealer that recorded the wrong digest (encryption correct under that header): caught after decryption."""
    import base64

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    wrong = hashlib.sha256(b"some other model").hexdigest()
    data_key, wrapped = KmsDataKeys(ALIAS, kms.client(OPERATOR_ARN)).new_data_key({"trustdial:model-sha256": wrong})
    content, nonce = b"the real model bytes", os.urandom(12)
    header = {"format": "trustdial-sealed-model/1", "cipher": "AES-256-GCM", "model": "m.onnx",
              "key": {"scheme": "aws-kms", "key_id": wrapped.key_id,
                      "encrypted_data_key": base64.b64encode(wrapped.encrypted_data_key).decode(),
                      "encryption_context": dict(wrapped.encryption_context)},
              "files": [{"name": "m.onnx", "size": len(content), "sha256": wrong, "nonce": nonce.hex()}]}  # fmt: skip
    raw = json.dumps(header).encode()
    aad = b"trustdial-sealed-model/1\x00" + hashlib.sha256(raw).digest() + bytes(4) + b"m.onnx"
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "header.json").write_bytes(raw)
    (tmp_path / "s" / "0000.sealed").write_bytes(AESGCM(data_key).encrypt(nonce, content, aad))
    assert refused_code(kms, tmp_path / "s", attested_nsm(pcr_bytes(CURRENT_PCRS))) == "SEALED_DIGEST_MISMATCH"


def test_credentials_kms_considers_expired_are_refused(kms: Loopback, sealed: Path) -> None:
    """The host hands over credentials it believes valid for hours; KMS says their session token has expired."""
    from enclave_app.sealed.credentials import fetch_credentials

    imds = Imds(kms.state, lifetime=timedelta(hours=6))
    with imds_server(imds) as url, _credential_server(url) as address:
        handed_over = fetch_credentials(address)  # what the enclave will receive (cached by the host)
        kms.state.credentials[handed_over.access_key_id].expires = datetime.now(UTC) - timedelta(seconds=1)
        code = refused_code(kms, sealed, attested_nsm(pcr_bytes(CURRENT_PCRS)), credentials=str(address))
    assert code == "KMS_CREDENTIALS_EXPIRED"
    assert kms.state.log[-1]["error"] == "ExpiredTokenException"


def test_expired_credentials_from_the_host_are_refused_before_kms(kms: Loopback, sealed: Path) -> None:
    imds = Imds(kms.state, lifetime=timedelta(minutes=-1))
    with imds_server(imds) as url, _credential_server(url) as address:
        code = refused_code(kms, sealed, attested_nsm(pcr_bytes(CURRENT_PCRS)), credentials=str(address))
    assert code == "CREDENTIALS_EXPIRED"
    assert not any(entry["target"] == "TrentService.Decrypt" for entry in kms.state.log)  # KMS never asked


def test_credentials_with_a_wrong_secret_fail_the_sigv4_check(kms: Loopback, sealed: Path) -> None:
    nsm = attested_nsm(pcr_bytes(CURRENT_PCRS))
    kms.state.attestation_root = lambda: nsm.root_certificate
    access_key, issued = kms.state.issue(HOST_ROLE_ARN, timedelta(hours=1))
    forged = AwsCredentials(access_key, issued.secret[::-1], issued.token, issued.expires)
    unwrapper = KmsRecipientUnwrapper(nsm, KmsEndpoint(parse_address(kms.proxy), REGION, kms.ca_file), lambda: forged)
    with pytest.raises(SealedModelError) as caught:
        unseal(sealed, unwrapper)
    assert caught.value.code == "KMS_SIGNATURE_REJECTED"


def test_an_attested_enclave_with_another_principals_credentials_is_refused(kms: Loopback, sealed: Path) -> None:
    imds = Imds(kms.state, principal=OPERATOR_ARN)
    with imds_server(imds) as url, _credential_server(url) as address:
        code = refused_code(kms, sealed, attested_nsm(pcr_bytes(CURRENT_PCRS)), credentials=str(address))
    assert code == "KMS_ACCESS_DENIED"


def test_the_host_role_cannot_decrypt_without_an_attestation(kms: Loopback, sealed: Path) -> None:
    import base64

    from botocore.exceptions import ClientError

    header = json.loads((sealed / "header.json").read_bytes())
    with pytest.raises(ClientError) as caught:
        kms.client(HOST_ROLE_ARN).decrypt(
            CiphertextBlob=base64.b64decode(header["key"]["encrypted_data_key"]),
            EncryptionContext=header["key"]["encryption_context"],
        )
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"


@pytest.mark.parametrize("trust", ["another-ca", "pinned-amazon-roots"])
def test_a_kms_endpoint_with_an_untrusted_certificate_is_refused(kms: Loopback, sealed: Path, tmp_path: Path,
                                                                 trust: str) -> None:  # fmt: skip
    from kms_loopback import LoopbackCa

    (tmp_path / "other-ca.pem").write_bytes(LoopbackCa.create().pem())
    ca_file = tmp_path / "other-ca.pem" if trust == "another-ca" else None  # None: what the enclave trusts by default
    nsm = attested_nsm(pcr_bytes(CURRENT_PCRS))
    endpoint = KmsEndpoint(parse_address(kms.proxy), REGION, ca_file)
    with pytest.raises(SealedModelError) as caught:
        unseal(sealed, KmsRecipientUnwrapper(nsm, endpoint, lambda: ImdsCredentialSource(kms.imds_url).fetch()))
    assert caught.value.code == "KMS_TLS"
    assert not any(entry["target"] == "TrentService.Decrypt" for entry in kms.state.log)


@contextmanager
def _credential_server(imds_url: str) -> Iterator[Any]:
    import asyncio
    import threading

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = CredentialServer(CredentialCache(ImdsCredentialSource(imds_url).fetch))
    bound = asyncio.run_coroutine_threadsafe(server.start(parse_address("tcp:127.0.0.1:0")), loop).result(10)
    try:
        yield bound
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _pcrs_file(tmp_path: Path, pcrs: dict[str, str]) -> Path:
    path = tmp_path / "pcrs.json"
    path.write_text(json.dumps({str(i): pcrs[f"pcr{i}"] for i in (0, 1, 2)}))
    return path


def _root_reader(path: Path) -> Any:
    return lambda: x509.load_pem_x509_certificate(path.read_bytes())


def _sealed_serve_args(kms: Loopback, sealed: Path) -> list[str]:
    return ["--sealed-model", f"secret={sealed}", "--kms", kms.proxy, "--region", REGION,
            "--credentials", kms.credentials, "--kms-ca-file", str(kms.ca_file)]  # fmt: skip


def test_a_sealed_model_is_served_through_the_gateway_and_its_receipt_names_the_plaintext_digest(
    kms: Loopback, sealed: Path, model_bytes: bytes, tmp_path: Path
) -> None:
    import base64

    from serve_gateway import start_serve_and_gateway

    root = tmp_path / "root.pem"
    kms.state.attestation_root = _root_reader(root)
    pcrs = _pcrs_file(tmp_path, CURRENT_PCRS)
    service = start_serve_and_gateway([], pcrs, root, serve_args=_sealed_serve_args(kms, sealed))
    try:
        listed = httpx.get(f"{service.url}/v1/models", timeout=30).json()
        request = {
            "model": "secret",
            "inputs": {"x": {"dtype": "float32", "shape": [1, 4], "data": base64.b64encode(bytes(16)).decode()}},
            "include_attestation": True,
        }
        response = httpx.post(f"{service.url}/v1/infer", json=request, timeout=60)
    finally:
        service.stop()
    digest = hashlib.sha256(model_bytes).hexdigest()
    assert response.status_code == 200, response.text
    assert [m["sha256"] for m in listed["models"] if m["name"] == "secret"] == [digest]
    (tmp_path / "request.json").write_text(json.dumps(request))
    (tmp_path / "response.json").write_text(response.text)
    done = subprocess.run(
        [str(BIN / "trustdial-verify"), "receipt", str(tmp_path / "response.json"), "--request",
         str(tmp_path / "request.json"), "--pcrs", str(pcrs), "--model-sha256", digest, "--root", str(root), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["model_sha256"] == digest
    assert [e["principal"] for e in kms.state.log if e["target"] == "TrentService.Decrypt"] == [HOST_ROLE_ARN]


def test_the_server_does_not_start_when_kms_refuses(kms: Loopback, sealed: Path, tmp_path: Path) -> None:
    root = tmp_path / "root.pem"
    kms.state.attestation_root = _root_reader(root)
    wrong = _pcrs_file(tmp_path, {**CURRENT_PCRS, "pcr0": label_pcr("an image nobody accepted")})
    done = subprocess.run(
        [str(BIN / "trustdial"), "serve", "--listen", "tcp:127.0.0.1:0", "--nsm", "simulated",
         "--simulated-pcrs-from", str(wrong), "--simulated-root-out", str(root), *_sealed_serve_args(kms, sealed)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "[KMS_ACCESS_DENIED]" in done.stderr
    assert "listening" not in done.stdout


def test_the_seal_command_uses_kms_generate_data_key(kms: Loopback, model_bytes: bytes, tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(model_bytes)
    access_key, issued = kms.state.issue(OPERATOR_ARN, timedelta(hours=1))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": issued.secret,
           "AWS_SESSION_TOKEN": issued.token, "AWS_CA_BUNDLE": str(kms.ca_file), "AWS_DEFAULT_REGION": REGION,
           "AWS_ENDPOINT_URL_KMS": f"https://127.0.0.1:{kms.kms_port}", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}  # fmt: skip
    done = subprocess.run(
        [str(BIN / "trustdial"), "model", "seal", str(tmp_path / "m.onnx"), "--key", f"kms:{ALIAS}",
         "--output", str(tmp_path / "out"), "--json"], capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    digest = hashlib.sha256(model_bytes).hexdigest()
    assert report["ok"] is True and report["model_sha256"] == digest and report["key_id"] == kms.state.key_arn
    header = json.loads((tmp_path / "out" / "header.json").read_bytes())
    assert header["key"]["encryption_context"] == {"trustdial:model-sha256": digest}
    assert [e["target"] for e in kms.state.log] == ["TrentService.GenerateDataKey"]
    refused = subprocess.run(
        [str(BIN / "trustdial"), "model", "seal", str(tmp_path / "m.onnx"), "--key", f"kms:{ALIAS}",
         "--output", str(tmp_path / "out"), "--json"], capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert refused.returncode == 2 and json.loads(refused.stdout)["code"] == "SEAL_OUTPUT_EXISTS"
