"""The receipt pipeline with its sealer in a child process: receipts verify with the unchanged
verifier, commit exactly what the threaded pipeline commits, and failures are typed, not hangs."""

from __future__ import annotations

import hashlib
import os
import signal
from multiprocessing.shared_memory import SharedMemory

import numpy as np
import pytest
from trustdial_verifier._internal.receipts import ReceiptExpectation, check_statement, open_receipt
from trustdial_verifier._internal.tensors import Tensor, TensorError, commit_tensors

from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.pipeline import ReceiptPipeline
from enclave_app.receipts.process_pipeline import ProcessReceiptPipeline, SealerProcessError

ATTESTATION = hashlib.sha256(b"binding document").digest()
MODEL = hashlib.sha256(b"model").digest()
FIXED_MS = 1_790_000_000_123


def _clock() -> float:
    return FIXED_MS / 1000


def _response(i: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], bytes]:
    """Varied tensors: several names (unsorted), dtypes, shapes, byte orders, a strided view, bools."""
    rng = np.random.default_rng(i)
    kind = i % 4
    if kind == 0:
        inputs = {"x": rng.standard_normal((1, 784)).astype(np.float32)}
    elif kind == 1:
        inputs = {"tokens": rng.integers(0, 1000, (1, i % 7 + 1)).astype(np.int64), "mask": rng.random(3) > 0.5}
    elif kind == 2:
        inputs = {"b": rng.standard_normal((4, 6))[:, ::2], "a": np.array(i, dtype=">i4")}
    else:
        inputs = {"z": np.zeros((0, 3), np.float16), "y": rng.integers(0, 255, (2, 2, 2)).astype(np.uint8)}
    outputs = {"logits": rng.standard_normal((1, 10)).astype(np.float32), "argmax": np.array([i % 10], np.int64)}
    return inputs, outputs, hashlib.sha256(b"%d" % i).digest()[: i % 33]


def _tensors(values: dict[str, np.ndarray]) -> dict[str, Tensor]:
    return {name: Tensor.from_array(value) for name, value in values.items()}


def _receipts(pipeline: ReceiptPipeline | ProcessReceiptPipeline, count: int) -> list[bytes]:
    futures = []
    for i in range(count):
        inputs, outputs, nonce = _response(i)
        futures.append(pipeline.submit("infer", MODEL, inputs, outputs, nonce))
    pipeline.drain()
    receipts = [future.result(timeout=30) for future in futures if future is not None]
    pipeline.close()
    return receipts


def test_every_receipt_of_300_responses_verifies_against_independently_committed_tensors() -> None:
    key = ReceiptKey.generate()
    receipts = _receipts(ProcessReceiptPipeline(key, ATTESTATION, max_batch=16, max_wait=0.01), 300)
    assert len(receipts) == 300
    for i, raw in enumerate(receipts):
        inputs, outputs, nonce = _response(i)
        statement = open_receipt(raw, public_key=key.public_key_der(), attestation_digest=ATTESTATION).statement
        assert statement.input.digest == commit_tensors(_tensors(inputs))
        assert statement.output.digest == commit_tensors(_tensors(outputs))
        check_statement(
            statement,
            ReceiptExpectation(
                models=frozenset({MODEL}),
                inputs=_tensors(inputs),
                outputs=_tensors(outputs),
                nonce=nonce,
                min_seq=i + 1,
            ),
        )
        assert statement.seq == i + 1


def test_statements_equal_the_threaded_pipelines_byte_for_byte() -> None:
    key = ReceiptKey.generate()
    by_process = _receipts(ProcessReceiptPipeline(key, ATTESTATION, max_batch=8, clock=_clock), 120)
    by_thread = _receipts(ReceiptPipeline(key, ATTESTATION, max_batch=8, clock=_clock), 120)
    public = key.public_key_der()
    for a, b in zip(by_process, by_thread, strict=True):
        left = open_receipt(a, public_key=public, attestation_digest=ATTESTATION).receipt.statement
        right = open_receipt(b, public_key=public, attestation_digest=ATTESTATION).receipt.statement
        assert left == right


def test_params_are_committed_in_the_statement() -> None:
    key = ReceiptKey.generate()
    pipeline = ProcessReceiptPipeline(key, ATTESTATION)
    tokens = np.array([[1, 2, 3]], np.int64)
    future = pipeline.submit("generate", MODEL, {"ids": tokens}, {"ids": tokens}, b"n", {"max_new_tokens": 4})
    assert future is not None
    raw = future.result(timeout=30)
    pipeline.close()
    statement = open_receipt(raw, public_key=key.public_key_der(), attestation_digest=ATTESTATION).statement
    assert (statement.op, dict(statement.params)) == ("generate", {"max_new_tokens": 4})


def test_a_response_larger_than_a_slot_is_committed_by_submit_and_its_receipt_verifies() -> None:
    key = ReceiptKey.generate()
    pipeline = ProcessReceiptPipeline(key, ATTESTATION, slot_size=4096)
    rng = np.random.default_rng(7)
    big = {"image": rng.standard_normal((3, 64, 64)).astype(np.float32)}  # 48 KiB, twelve slots' worth
    small = {"x": np.arange(4, dtype=np.float32)}
    out = {"y": np.ones(2, np.float32)}
    futures = [pipeline.submit("infer", MODEL, big, out, b"big"), pipeline.submit("infer", MODEL, small, out, b"s")]
    receipts = [future.result(timeout=30) for future in futures if future is not None]
    pipeline.close()
    for seq, (raw, inputs, nonce) in enumerate(zip(receipts, (big, small), (b"big", b"s"), strict=True), 1):
        statement = open_receipt(raw, public_key=key.public_key_der(), attestation_digest=ATTESTATION).statement
        check_statement(
            statement,
            ReceiptExpectation(
                models=frozenset({MODEL}), inputs=_tensors(inputs), outputs=_tensors(out), nonce=nonce, min_seq=seq
            ),
        )
        assert statement.input.digest == commit_tensors(_tensors(inputs))
        assert statement.seq == seq


def test_params_larger_than_a_slot_are_refused_with_a_typed_error_and_the_next_response_is_sealed() -> None:
    key = ReceiptKey.generate()
    pipeline = ProcessReceiptPipeline(key, ATTESTATION, slot_size=4096)
    x, y = {"x": np.zeros(4, np.float32)}, {"y": np.zeros(1, np.float32)}
    with pytest.raises(SealerProcessError) as caught:
        pipeline.submit("generate", MODEL, x, y, b"", {"note": "p" * 5000})
    assert caught.value.code == "RECEIPT_SLOT_OVERFLOW"
    future = pipeline.submit("infer", MODEL, x, y, b"")
    assert future is not None
    statement = open_receipt(
        future.result(timeout=30), public_key=key.public_key_der(), attestation_digest=ATTESTATION
    ).statement
    pipeline.close()
    assert statement.seq == 1


def test_an_unsupported_dtype_is_refused_at_submit() -> None:
    pipeline = ProcessReceiptPipeline(ReceiptKey.generate(), ATTESTATION)
    try:
        with pytest.raises(TensorError) as caught:
            pipeline.submit("infer", MODEL, {"x": np.zeros(2, np.complex64)}, {"y": np.zeros(1)}, b"")
        assert caught.value.code == "TENSOR_DTYPE"
    finally:
        pipeline.close()


@pytest.mark.timeout(60)
def test_a_killed_sealer_fails_outstanding_and_later_responses_with_sealer_died() -> None:
    pipeline = ProcessReceiptPipeline(ReceiptKey.generate(), ATTESTATION, max_wait=10.0, timeout=5.0)
    pid = pipeline.child_pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # nothing gets sealed before the kill
    future = pipeline.submit("infer", MODEL, {"x": np.zeros(3, np.float32)}, {"y": np.zeros(1, np.float32)}, b"")
    assert future is not None
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(SealerProcessError) as outstanding:
        future.result(timeout=10)
    assert outstanding.value.code == "SEALER_DIED"
    with pytest.raises(SealerProcessError) as later:
        pipeline.submit("infer", MODEL, {"x": np.zeros(3, np.float32)}, {"y": np.zeros(1, np.float32)}, b"")
    assert later.value.code == "SEALER_DIED"
    with pytest.raises(SealerProcessError) as drained:
        pipeline.drain()
    assert drained.value.code == "SEALER_DIED"
    pipeline.close()


@pytest.mark.timeout(60)
def test_a_stalled_sealer_makes_drain_time_out_with_a_typed_error() -> None:
    pipeline = ProcessReceiptPipeline(ReceiptKey.generate(), ATTESTATION, timeout=0.5)
    pid = pipeline.child_pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        pipeline.submit("infer", MODEL, {"x": np.zeros(3, np.float32)}, {"y": np.zeros(1, np.float32)}, b"")
        with pytest.raises(SealerProcessError) as caught:
            pipeline.drain()
        assert caught.value.code == "SEALER_TIMEOUT"
    finally:
        os.kill(pid, signal.SIGCONT)
        pipeline.close()


@pytest.mark.timeout(60)
def test_a_full_ring_with_a_stalled_sealer_times_out_instead_of_overwriting() -> None:
    pipeline = ProcessReceiptPipeline(ReceiptKey.generate(), ATTESTATION, slots=4, timeout=0.5)
    pid = pipeline.child_pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        for _ in range(4):
            pipeline.submit("infer", MODEL, {"x": np.zeros(3, np.float32)}, {"y": np.zeros(1, np.float32)}, b"")
        with pytest.raises(SealerProcessError) as caught:
            pipeline.submit("infer", MODEL, {"x": np.zeros(3, np.float32)}, {"y": np.zeros(1, np.float32)}, b"")
        assert caught.value.code == "SEALER_TIMEOUT"
    finally:
        os.kill(pid, signal.SIGCONT)
        pipeline.close()


def test_close_delivers_every_receipt_then_ends_the_child_and_unlinks_the_shared_memory() -> None:
    received: list[bytes] = []
    pipeline = ProcessReceiptPipeline(ReceiptKey.generate(), ATTESTATION, max_wait=10.0, on_receipt=received.append)
    name = pipeline._shm.name
    for i in range(10):
        pipeline.submit("infer", MODEL, {"x": np.full(3, i, np.float32)}, {"y": np.zeros(1, np.float32)}, b"")
    pipeline.close()
    pipeline.drain()  # nothing left to wait for, and no error
    assert len(received) == 10
    assert pipeline._process.returncode == 0
    with pytest.raises(FileNotFoundError):
        SharedMemory(name=name)
    with pytest.raises(SealerProcessError) as caught:
        pipeline.submit("infer", MODEL, {"x": np.zeros(3, np.float32)}, {"y": np.zeros(1, np.float32)}, b"")
    assert caught.value.code == "PIPELINE_CLOSED"


def test_the_ring_is_refused_where_stores_may_be_seen_out_of_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The publish relies on x86-64's store order; elsewhere the pipeline must not start (the
    server's default sealer, the loop, needs no ring)."""
    from enclave_app.receipts import ring
    from enclave_app.service import default_sealer

    assert ring.ring_supported("x86_64") and not ring.ring_supported("aarch64")
    monkeypatch.setattr(ring.platform, "machine", lambda: "aarch64")
    with pytest.raises(SealerProcessError) as caught:
        ProcessReceiptPipeline(ReceiptKey.generate(), ATTESTATION)
    assert caught.value.code == "SEALER_UNSUPPORTED_PLATFORM"
    assert default_sealer() == "loop"
