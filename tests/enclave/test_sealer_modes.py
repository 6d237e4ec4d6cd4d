"""The places ``trustdial serve`` can seal receipts: the server's event loop (the default,
``--sealer loop``), the sealer process (``--sealer process``; static-shape models run on the ring's
slots) and a thread of the server (``--sealer thread``). Each serves verified inference through
gateway and client; the default starts no sealer process and ``--sealer process`` really does run
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
from trustdial_verifier._internal.client import Client
from trustdial_verifier._internal.tensors import Tensor

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


@pytest.fixture(scope="module")
def in_process(model_files: ModelFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    service = start_service(model_files, tmp_path_factory.mktemp("in_process"), "--sealer", "process")
    try:
        yield service
    finally:
        stop_service(service)


@pytest.fixture(scope="module")
def on_loop(model_files: ModelFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    service = start_service(model_files, tmp_path_factory.mktemp("on_loop"), "--sealer", "loop")
    try:
        yield service
    finally:
        stop_service(service)


def test_the_default_server_seals_on_its_loop_with_no_sealer_process(live: LiveService) -> None:
    assert not any("sealer_process" in command for command in _children(live.processes[0].pid))


def test_the_process_sealer_seals_in_a_child_process(in_process: LiveService) -> None:
    assert any("enclave_app.receipts.sealer_process" in command for command in _children(in_process.processes[0].pid))


def test_a_dead_sealer_withholds_responses_with_503_sealer_died_and_the_server_keeps_answering(
    model_files: ModelFiles, tmp_path: Path
) -> None:
    service = start_service(model_files, tmp_path, "--sealer", "process")
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


def test_the_loop_sealing_server_has_no_sealer_process(on_loop: LiveService) -> None:
    assert not any("sealer_process" in command for command in _children(on_loop.processes[0].pid))


@pytest.mark.parametrize("which", ["live", "in_process", "threaded", "on_loop"])
def test_every_sealer_serves_verified_inference(which: str, request: pytest.FixtureRequest) -> None:
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

    from trustdial_verifier._internal.receipts import ReceiptExpectation, check_statement, open_receipt

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


@pytest.mark.parametrize(("sealer", "inline_run_s"), [("process", 1.0), ("process", 0.0), ("loop", 1.0), ("loop", 0.0)])
def test_a_model_answers_the_same_on_the_loop_thread_and_on_a_worker_with_the_loop_reading_receipts(
    model_files: ModelFiles, sealer: str, inline_run_s: float
) -> None:
    """As ``trustdial serve`` builds it (its event loop signals when it is about to block; with the
    sealer process the loop reads the sealer's messages): a model whose timed run is under
    ``inline_run_s`` runs on the loop's thread, others on a worker; each gets onnxruntime's outputs and
    a receipt that verifies, and a lone request is answered without a drain and with a budget (60 s)
    that only the idle rules can beat."""
    import asyncio

    from trustdial_verifier._internal.receipts import ReceiptExpectation, check_statement, open_receipt

    from enclave_app.loop_idle import idle_signalling_loop
    from enclave_app.models import ModelRegistry
    from enclave_app.nsm.selection import open_nsm
    from enclave_app.receipts.process_pipeline import ProcessReceiptPipeline
    from enclave_app.service import EnclaveService

    plain = ort.InferenceSession(str(model_files.mlp), providers=["CPUExecutionProvider"]).run(None, {"x": X})[0]
    loop, selector = idle_signalling_loop()

    async def run() -> None:
        registry = ModelRegistry.from_specs([f"mlp={model_files.mlp}"])
        service = EnclaveService(
            registry, open_nsm("simulated"), sealer=sealer, loop=asyncio.get_running_loop(),
            inline_run_s=inline_run_s, batch_wait=60.0,
        )  # fmt: skip
        receipts = service.receipts
        selector.on_block = receipts.writer_idle if isinstance(receipts, ProcessReceiptPipeline) else service.loop_idle
        try:
            assert service.inline == ({"mlp"} if inline_run_s else set())
            for nonce in (b"first", b"second"):
                outputs, receipt = await asyncio.wait_for(service.infer("mlp", {"x": Tensor.from_array(X)}, nonce), 15)
                np.testing.assert_array_equal(outputs["y"].to_array(), plain)
                opened = open_receipt(
                    receipt, public_key=service.public_key, attestation_digest=service.attestation_digest
                )
                check_statement(
                    opened.statement,
                    ReceiptExpectation(
                        models=frozenset({model_files.sha256(model_files.mlp)}),
                        inputs={"x": Tensor.from_array(X)},
                        outputs=outputs,
                        nonce=nonce,
                    ),
                )
        finally:
            selector.on_block = None
            service.close()

    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        runner.run(run())
