"""The shipped customer ramdisk boots under qemu (TCG) and serves attested inference through ``trustdial gateway``.

The EIF of the session build (DEV/TEST blobs: Debian kernel, the test init, e1000 as nsm.ko) is booted from its
own sections, its ramdisks byte for byte, plus one TEST-ONLY ramdisk that replaces ``/cmd`` with the production
command where only ``--listen`` (tcp instead of vsock) and ``--nsm`` (simulated instead of device) differ, and adds
the simulated NSM's PCRs: those of the production-layout EIF, so the receipt is checked against that EIF's signed
manifest. The guest's port is forwarded from 127.0.0.1 only, qemu is killed in ``finally``.

The same guest serves the image's LLM bundle (the tiny one, the session build's LLM argument) with the image's
onnxruntime-genai: the real ``openai`` client (strict response validation) asks through ``trustdial-verify proxy``,
which pins the PCRs and the bundle digest from the manifest made of the build's own record, for a plain and a
streamed chat completion, and both arrive verified."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from openai.types.chat import ChatCompletionMessageParam
from serve_gateway import start_process, stop_process
from trustdial_verifier._internal.client import Client, ExpectedEnclave
from trustdial_verifier._internal.llm.bundle import read_manifest
from trustdial_verifier._internal.tensors import Tensor

from image.conftest import LLM, MODEL_DIMS, ROOT, ImageSession, record_measurements, run_json
from image.qemu_boot import RAMDISK, boot, eif_sections, override_ramdisk
from infra.image.dockerfile_spec import parse_dockerfile

# the session build (fresh locks, two image builds, two EIFs) runs in the first test's setup
pytestmark = pytest.mark.timeout(2400)
BIN = Path(sys.executable).parent
BOOT_TIMEOUT_S = 420
TEST_FLAGS = {"--listen": "tcp:0.0.0.0:5000", "--nsm": "simulated"}


def booted_command() -> list[str]:
    """Dockerfile.enclave's CMD with only the transport and NSM flags changed, plus the simulator's inputs."""
    production = list(parse_dockerfile(ROOT / "Dockerfile.enclave").cmd)
    command = list(production)
    for flag, value in TEST_FLAGS.items():
        command[command.index(flag) + 1] = value
    changed = [i for i, (a, b) in enumerate(zip(production, command, strict=True)) if a != b]
    assert [production[i - 1] for i in changed] == list(TEST_FLAGS)
    return [*command, "--simulated-pcrs-from", "/test/pcrs.json", "--simulated-root-out", "/dev/ttyS1"]


def _sign_manifest(image_session: ImageSession, eif: Path, workdir: Path) -> tuple[Path, Path]:
    """The manifest of ``eif`` from the build's own record (build.json: image inputs and the models served)."""
    key = ec.generate_private_key(ec.SECP384R1())
    (workdir / "signer.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (workdir / "signer.pem").write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    build = image_session.builds[0]
    run_json("trustdial", "measurements", "create", "--eif", eif, "--source-revision", "boot-test",
             "--image-build", build.directory / "build.json", "--output", workdir / "manifest.json",
             timeout=300)  # fmt: skip
    run_json("trustdial", "measurements", "sign", "--manifest", workdir / "manifest.json",
             "--key", workdir / "signer.key", "--output", workdir / "manifest.cose", timeout=300)  # fmt: skip
    return workdir / "manifest.cose", workdir / "signer.pem"


def test_the_shipped_image_boots_and_serves_verifiable_receipts(image_session: ImageSession, tmp_path: Path) -> None:
    build = image_session.builds[0]
    pcrs = {k: v for k, v in build.eif_result.items() if k in ("PCR0", "PCR1", "PCR2")}
    model_sha256 = hashlib.sha256(image_session.model.read_bytes()).hexdigest()
    bundle_digest = read_manifest(LLM).digest().hex()
    extra = override_ramdisk(booted_command(), {"pcrs.json": json.dumps(pcrs).encode()})
    customer = [data for kind, data in eif_sections(build.eif) if kind == RAMDISK][1]
    assert hashlib.sha384(bytes(48) + hashlib.sha384(customer).digest()).hexdigest() == pcrs["PCR2"]
    manifest, signer = _sign_manifest(image_session, build.eif, tmp_path)
    pinned = json.loads((tmp_path / "manifest.json").read_text())["models"]
    assert pinned == {"model": {"sha256": model_sha256}, "tiny": {"sha256": bundle_digest}}

    guest = boot(build.eif, extra, tmp_path)
    gateway = proxy = None
    try:
        ready, seconds = guest.wait_for_listening(BOOT_TIMEOUT_S)
        record_measurements({"boot_to_serving_seconds": round(seconds, 1)})
        assert ready["models"] == {"model": model_sha256}
        assert ready["llm"] == {"tiny": bundle_digest}  # onnxruntime-genai loaded /app/llm/bundle in the guest
        root_pem = guest.ttys1.read_bytes().replace(b"\r\n", b"\n")
        root = x509.load_pem_x509_certificate(root_pem)
        (tmp_path / "root.pem").write_bytes(root_pem)
        gateway, gateway_ready = start_process(
            [BIN / "trustdial", "gateway", "--enclave", f"tcp:127.0.0.1:{guest.port}", "--listen", "127.0.0.1:0"],
            timeout=180,
        )
        url = gateway_ready["url"]
        assert url.startswith("http://127.0.0.1:")

        models = httpx.get(f"{url}/v1/models", timeout=60)
        assert models.status_code == 200 and model_sha256 in models.text

        attestation = httpx.get(f"{url}/v1/attestation", params={"nonce": "00" * 16}, timeout=60)
        assert attestation.status_code == 200, attestation.text

        expected = ExpectedEnclave(
            pcrs={int(k[3:]): bytes.fromhex(v) for k, v in pcrs.items()}, models={"model": bytes.fromhex(model_sha256)},
            root=root,
        )  # fmt: skip
        with Client(url, expected) as client:
            result = client.infer("model", {"x": Tensor.from_array(np.ones((1, MODEL_DIMS[0]), np.float32))})
        assert result.statement.model == bytes.fromhex(model_sha256)

        data = base64.b64encode(np.arange(MODEL_DIMS[0], dtype=np.float32).tobytes()).decode()
        request = {"model": "model", "include_attestation": True,
                   "inputs": {"x": {"dtype": "float32", "shape": [1, MODEL_DIMS[0]], "data": data}}}  # fmt: skip
        response = httpx.post(f"{url}/v1/infer", json=request, timeout=120)
        assert response.status_code == 200, response.text
        (tmp_path / "request.json").write_text(json.dumps(request))
        (tmp_path / "response.json").write_text(response.text)
        done = subprocess.run(
            [str(BIN / "trustdial-verify"), "receipt", str(tmp_path / "response.json"),
             "--request", str(tmp_path / "request.json"), "--manifest", str(manifest), "--manifest-key", str(signer),
             "--root", str(tmp_path / "root.pem"), "--json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["model_sha256"] == model_sha256

        llm_started = time.monotonic()
        proxy, proxy_ready = start_process(
            [BIN / "trustdial-verify", "proxy", "--upstream", url, "--manifest", manifest, "--manifest-key", signer,
             "--root", tmp_path / "root.pem"], timeout=180,
        )  # fmt: skip
        app = openai.OpenAI(base_url=proxy_ready["url"] + "/v1", api_key="unused", max_retries=0, timeout=300,
                            _strict_response_validation=True)  # fmt: skip
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the capital of France?"}]
        plain = app.chat.completions.create(model="tiny", messages=messages, max_tokens=8, temperature=0)
        assert plain.model_extra is not None and plain.model_extra["trustdial_verified"] is True
        assert plain.usage is not None and 1 <= plain.usage.completion_tokens <= 8
        chunks = list(
            app.chat.completions.create(model="tiny", messages=messages, max_tokens=8, temperature=0,
                                        stream=True, stream_options={"include_usage": True})
        )  # fmt: skip
        assert chunks and all(c.model_extra is not None and c.model_extra["trustdial_verified"] for c in chunks)
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed == plain.choices[0].message.content
        record_measurements({"boot_llm_seconds": round(time.monotonic() - llm_started, 1)})
    finally:
        if proxy is not None:
            stop_process(proxy)
        if gateway is not None:
            stop_process(gateway)
        guest.stop()
    assert guest.process.returncode is not None
