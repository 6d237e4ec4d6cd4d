"""Both places ``trustdial serve`` can seal receipts: the sealer process (the default; static-shape
models run on the ring's slots) and a thread of the server (``--sealer thread``). Each serves
verified inference and generation through gateway and client, and the default really does run
its sealing in a child process of the server."""

from __future__ import annotations

import base64
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from verifier.client import Client
from verifier.tensors import Tensor

from enclave.live_service import LiveService, ModelFiles, start_service, stop_service

X = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 16)


def _children(pid: int) -> list[str]:
    """Command lines of a process's children (Linux /proc)."""
    commands = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            commands.append((Path("/proc") / child / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return commands


@pytest.fixture(scope="module")
def threaded(model_files: ModelFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    service = start_service(model_files, tmp_path_factory.mktemp("threaded"), "--sealer", "thread")
    try:
        yield service
    finally:
        stop_service(service)


def test_the_default_server_seals_in_a_child_process(live: LiveService) -> None:
    assert any("enclave_app.receipts.sealer_process" in command for command in _children(live.processes[0].pid))


def test_a_dead_sealer_withholds_responses_with_503_sealer_died_and_the_server_keeps_answering(
    model_files: ModelFiles, tmp_path: Path
) -> None:
    service = start_service(model_files, tmp_path)
    try:
        body = {
            "model": "mlp",
            "inputs": {"x": {"dtype": "float32", "shape": [1, 16], "data": base64.b64encode(bytes(64)).decode()}},
        }
        assert httpx.post(f"{service.url}/v1/infer", json=body, timeout=30).status_code == 200
        (sealer,) = [
            int(pid)
            for task in Path(f"/proc/{service.processes[0].pid}/task").iterdir()
            for pid in (task / "children").read_text().split()
            if b"sealer_process" in (Path("/proc") / pid / "cmdline").read_bytes()
        ]
        os.kill(sealer, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:  # the server notices when the sealer's pipe closes
            response = httpx.post(f"{service.url}/v1/infer", json=body, timeout=30)
            if response.status_code != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "SEALER_DIED"
        assert "receipt" not in response.json()
        assert httpx.get(f"{service.url}/v1/models", timeout=30).status_code == 200
        attestation = httpx.get(f"{service.url}/v1/attestation", params={"nonce": "00" * 16}, timeout=30)
        assert attestation.status_code == 200
    finally:
        stop_service(service)


def test_the_threaded_server_has_no_sealer_process(threaded: LiveService) -> None:
    assert not any("sealer_process" in command for command in _children(threaded.processes[0].pid))


@pytest.mark.parametrize("which", ["live", "threaded"])
def test_both_sealers_serve_verified_inference(which: str, request: pytest.FixtureRequest) -> None:
    service: LiveService = request.getfixturevalue(which)
    with Client(service.url, service.expected()) as client:
        seqs = []
        for i in range(20):  # more than one micro-batch's worth, every response checked by the client
            result = client.infer("mlp", {"x": Tensor.from_array(X * i)})
            seqs.append(result.statement.seq)
        cnn = client.infer("cnn", {"x": Tensor.from_array(np.ones((1, 1, 28, 28), np.float32))})
    assert seqs == sorted(seqs) and len(set(seqs)) == 20
    assert cnn.statement.model == service.models["cnn"]
    assert cnn.statement.seq > seqs[-1]


def test_the_process_sealer_binds_static_tensor_models_and_leaves_the_language_model_to_submit(
    model_files: ModelFiles,
) -> None:
    import asyncio

    from verifier.receipts import ReceiptExpectation, check_statement, open_receipt

    from enclave_app.models import ModelRegistry
    from enclave_app.nsm.selection import open_nsm
    from enclave_app.service import EnclaveService

    registry = ModelRegistry.from_specs([str(model_files.mlp), str(model_files.cnn), str(model_files.lm)])
    service = EnclaveService(registry, open_nsm("simulated"), sealer="process", batch_wait=0.0005)
    try:
        assert sorted(service.bound) == ["cnn", "mlp"]
        outputs, receipt = asyncio.run(service.infer("mlp", {"x": Tensor.from_array(X)}, b"nonce"))
        plain = ort.InferenceSession(str(model_files.mlp), providers=["CPUExecutionProvider"]).run(None, {"x": X})[0]
        np.testing.assert_array_equal(outputs["y"].to_array(), plain)  # what onnxruntime computes on its own
        statement = open_receipt(
            receipt, public_key=service.public_key, attestation_digest=service.attestation_digest
        ).statement
        check_statement(
            statement,
            ReceiptExpectation(
                models=frozenset({model_files.sha256(model_files.mlp)}),
                inputs={"x": Tensor.from_array(X)},
                outputs=outputs,
                nonce=b"nonce",
            ),
        )
    finally:
        service.close()
