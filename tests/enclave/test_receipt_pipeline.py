"""The receipt pipeline seals micro-batches on its own thread; every receipt verifies alone."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from trustdial_verifier._internal.receipts import ReceiptExpectation, check_statement, open_receipt
from trustdial_verifier._internal.tensors import Tensor

from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.pipeline import ReceiptPipeline

ATTESTATION = hashlib.sha256(b"binding document").digest()
MODEL = hashlib.sha256(b"model").digest()


def _run(max_batch: int, count: int) -> tuple[ReceiptKey, list[bytes], ReceiptPipeline]:
    key = ReceiptKey.generate()
    pipeline = ReceiptPipeline(key, ATTESTATION, max_batch=max_batch, max_wait=0.05)
    futures = [
        pipeline.submit("infer", MODEL, {"x": np.full(3, i, np.float32)}, {"y": np.array([i], np.int64)}, b"%d" % i)
        for i in range(count)
    ]
    receipts = [f.result(timeout=30) for f in futures if f is not None]
    pipeline.close()
    return key, receipts, pipeline


@pytest.mark.parametrize(("max_batch", "count"), [(1, 5), (8, 20), (64, 10)])
def test_each_receipt_verifies_against_its_own_tensors(max_batch: int, count: int) -> None:
    key, receipts, _ = _run(max_batch, count)
    for i, raw in enumerate(receipts):
        statement = open_receipt(raw, public_key=key.public_key_der(), attestation_digest=ATTESTATION).statement
        check_statement(
            statement,
            ReceiptExpectation(
                models=frozenset({MODEL}),
                inputs={"x": Tensor.from_array(np.full(3, i, np.float32))},
                outputs={"y": Tensor.from_array(np.array([i], np.int64))},
                nonce=b"%d" % i,
                min_seq=i + 1,
            ),
        )


def test_sequence_numbers_follow_submission_order() -> None:
    key, receipts, _ = _run(8, 20)
    seqs = [
        open_receipt(r, public_key=key.public_key_der(), attestation_digest=ATTESTATION).statement.seq for r in receipts
    ]
    assert seqs == list(range(1, 21))


def test_batches_are_bounded_by_count() -> None:
    _, _, pipeline = _run(8, 20)
    assert pipeline.batches_sealed >= 3


def test_per_request_mode_signs_every_response() -> None:
    _, _, pipeline = _run(1, 5)
    assert pipeline.batches_sealed == 5


def test_a_lone_response_is_sealed_within_the_latency_budget() -> None:
    pipeline = ReceiptPipeline(ReceiptKey.generate(), ATTESTATION, max_batch=64, max_wait=0.01)
    future = pipeline.submit("infer", MODEL, {"x": np.zeros(1, np.float32)}, {"y": np.zeros(1, np.float32)}, b"")
    assert future is not None
    assert future.result(timeout=30)
    pipeline.close()


def test_inline_mode_issues_the_same_verifiable_receipts() -> None:
    key = ReceiptKey.generate()
    pipeline = ReceiptPipeline(key, ATTESTATION, max_batch=4, max_wait=10.0, threaded=False)
    futures = [
        pipeline.submit("infer", MODEL, {"x": np.full(3, i, np.float32)}, {"y": np.array([i], np.int64)}, b"")
        for i in range(6)
    ]
    pipeline.drain()
    assert pipeline.batches_sealed == 2
    seqs = [
        open_receipt(f.result(timeout=0), public_key=key.public_key_der(), attestation_digest=ATTESTATION).statement.seq
        for f in futures
        if f is not None
    ]
    assert seqs == list(range(1, 7))


def test_on_receipt_sees_every_receipt_in_sequence_order() -> None:
    key = ReceiptKey.generate()
    seen: list[bytes] = []
    pipeline = ReceiptPipeline(key, ATTESTATION, max_batch=8, max_wait=0.05, on_receipt=seen.append)
    for i in range(20):
        pipeline.submit(
            "infer", MODEL, {"x": np.full(3, i, np.float32)}, {"y": np.array([i], np.int64)}, b"", want_future=False
        )
    pipeline.drain()
    pipeline.close()
    opened = [open_receipt(r, public_key=key.public_key_der(), attestation_digest=ATTESTATION).statement for r in seen]
    assert [s.seq for s in opened] == list(range(1, 21))
    for i, statement in enumerate(opened):
        check_statement(
            statement,
            ReceiptExpectation(
                models=frozenset({MODEL}),
                inputs={"x": Tensor.from_array(np.full(3, i, np.float32))},
                outputs={"y": Tensor.from_array(np.array([i], np.int64))},
                nonce=b"",
                min_seq=i + 1,
            ),
        )
