"""Both sealers seal a micro-batch as soon as no new response arrived for a whole poll interval:
a lone request is not held for the latency budget, and a burst still shares one signature."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np
import pytest
from trustdial_verifier._internal.receipts import open_receipt

from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.pipeline import ReceiptPipeline
from enclave_app.receipts.process_pipeline import ProcessReceiptPipeline

ATTESTATION = hashlib.sha256(b"binding document").digest()
MODEL = hashlib.sha256(b"model").digest()
BUDGET = 60.0  # far longer than any wait below: only the idle rule can seal in time

Pipeline = ReceiptPipeline | ProcessReceiptPipeline
MAKERS: dict[str, Callable[..., Pipeline]] = {"thread": ReceiptPipeline, "process": ProcessReceiptPipeline}


def _submit(pipeline: Pipeline, i: int) -> Future[bytes]:
    future = pipeline.submit("infer", MODEL, {"x": np.full(3, i, np.float32)}, {"y": np.array([i], np.int64)}, b"n")
    assert future is not None
    return future


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sealer", MAKERS)
def test_a_lone_response_is_sealed_without_waiting_out_the_latency_budget(sealer: str) -> None:
    key = ReceiptKey.generate()
    pipeline = MAKERS[sealer](key, ATTESTATION, max_wait=BUDGET, poll=0.005)
    try:
        future = _submit(pipeline, 7)
        try:
            raw = future.result(timeout=15)  # no drain: the sealer decides on its own
        except FutureTimeout:
            pytest.fail(f"the lone response waited for the {BUDGET} s budget")
        statement = open_receipt(raw, public_key=key.public_key_der(), attestation_digest=ATTESTATION).statement
        assert statement.seq == 1
    finally:
        pipeline.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sealer", MAKERS)
def test_a_burst_shorter_than_the_poll_interval_shares_one_signature(sealer: str) -> None:
    key = ReceiptKey.generate()
    pipeline = MAKERS[sealer](key, ATTESTATION, max_wait=BUDGET, poll=0.3, max_batch=64)
    try:
        futures = [_submit(pipeline, i) for i in range(40)]
        receipts = [future.result(timeout=15) for future in futures]
        # at most two seals even if this thread was paused for a whole poll mid-burst
        assert 1 <= pipeline.batches_sealed <= 2
        roots = {
            open_receipt(raw, public_key=key.public_key_der(), attestation_digest=ATTESTATION).batch_root.root
            for raw in receipts
        }
        assert len(roots) == pipeline.batches_sealed
    finally:
        pipeline.close()


def _voluntary_switches(thread_id: int) -> int:
    with open(f"/proc/self/task/{thread_id}/status") as status:
        for line in status:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches in /proc status")


@pytest.mark.timeout(60)
def test_the_sealing_thread_sleeps_while_nothing_is_queued_and_wakes_for_a_submit() -> None:
    """No polling: over half a second with nothing queued and no batch open, the sealing thread
    wakes a handful of times at most (a 0.5 ms poll would wake it about 1,000 times); a submit
    still wakes it and gets its receipt from the idle rule, long before the budget."""
    pipeline = ReceiptPipeline(ReceiptKey.generate(), ATTESTATION, max_wait=BUDGET, poll=0.0005)
    try:
        _submit(pipeline, 1).result(timeout=30)  # started, one batch sealed, then idle
        assert pipeline._thread is not None and pipeline._thread.native_id is not None
        tid = pipeline._thread.native_id
        before = _voluntary_switches(tid)
        threading.Event().wait(0.5)
        woke = _voluntary_switches(tid) - before
        assert woke < 20, f"the idle sealing thread woke {woke} times in 0.5 s"
        receipt = _submit(pipeline, 2).result(timeout=30)
        assert open_receipt(receipt, public_key=pipeline.key.public_key_der(), attestation_digest=ATTESTATION)
    finally:
        pipeline.close()
