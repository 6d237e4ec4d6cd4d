"""The receipt pipeline: responses in, receipts out, on a dedicated sealing thread.

``submit`` (called by the inference path, in response order) only assigns the sequence number
and timestamp and queues the tensors; the sealing thread computes the commitments, encodes the
statement, and seals micro-batches: a batch is signed once it holds ``max_batch`` statements
or its oldest statement has waited ``max_wait`` seconds. Every receipt still carries its own
inclusion path, so each response verifies on its own. ``max_batch=1`` is the per-request mode
(one signature per response). Hashing large tensors releases the GIL, so on a multi-core
enclave the receipt work overlaps with onnxruntime.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from verifier.errors import VerificationError
from verifier.receipts.merkle import leaf_hash
from verifier.receipts.model import BatchRoot

from enclave_app.receipts.fast_encoding import ArrayCommitter, StatementEncoder, encode_receipt
from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.sealer import inclusion_path, tree_levels


@dataclass
class _Job:
    op: str
    model: bytes
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    nonce: bytes
    params: Mapping[str, int | str] | None
    seq: int
    timestamp_ms: int
    queued: float
    future: Future[bytes] | None


class ReceiptPipeline:
    def __init__(
        self,
        key: ReceiptKey,
        attestation_digest: bytes,
        *,
        max_batch: int = 64,
        max_wait: float = 0.002,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_batch < 1 or max_wait < 0:
            raise ValueError("max_batch must be >= 1 and max_wait >= 0")
        self.key = key
        self.attestation_digest = attestation_digest
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._clock = clock
        self._committer = ArrayCommitter()
        self._encoder = StatementEncoder(attestation_digest)
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._seq = 0
        self._closed = False
        self._outstanding = 0
        self.receipts_issued = 0
        self.batches_sealed = 0
        self._thread = threading.Thread(target=self._run, name="receipt-sealer", daemon=True)
        self._thread.start()

    def submit(
        self,
        op: str,
        model: bytes,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
        nonce: bytes,
        params: Mapping[str, int | str] | None = None,
        *,
        want_future: bool = True,
    ) -> Future[bytes] | None:
        """Queue one response (tensors as numpy arrays or Tensors); the future yields the encoded receipt."""
        future: Future[bytes] | None = Future() if want_future else None
        with self._cond:
            if self._closed:
                raise RuntimeError("the receipt pipeline is closed")
            self._seq += 1
            job = _Job(op, model, inputs, outputs, nonce, params, self._seq, int(self._clock() * 1000),
                       time.monotonic(), future)  # fmt: skip
            self._queue.append(job)
            self._outstanding += 1
            if len(self._queue) == 1:
                self._cond.notify()
        return future

    def drain(self) -> None:
        """Block until every submitted response has its receipt."""
        with self._cond:
            while self._outstanding:
                self._cond.wait()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        statements: list[bytes] = []
        jobs: list[_Job] = []
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    if jobs:
                        remaining = jobs[0].queued + self.max_wait - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                    else:
                        self._cond.wait()
                incoming, self._queue = self._queue, []
                closing = self._closed
            for job in incoming:
                try:
                    statements.append(self._statement(job))
                except VerificationError as err:  # an unencodable tensor: fail this response only
                    self._fail(job, err)
                    continue
                jobs.append(job)
                if len(jobs) >= self.max_batch:
                    self._seal(statements, jobs)
                    statements, jobs = [], []
            if jobs and (closing or time.monotonic() - jobs[0].queued >= self.max_wait):
                self._seal(statements, jobs)
                statements, jobs = [], []
            if closing and not jobs:
                return

    def _statement(self, job: _Job) -> bytes:
        return self._encoder.encode(
            job.op,
            job.model,
            self._committer.commit(job.inputs),
            self._committer.commit(job.outputs),
            job.nonce,
            job.timestamp_ms,
            job.seq,
            job.params,
        )

    def _fail(self, job: _Job, err: Exception) -> None:
        if job.future is not None:
            job.future.set_exception(err)
        with self._cond:
            self._outstanding -= 1
            self._cond.notify_all()

    def _seal(self, statements: list[bytes], jobs: list[_Job]) -> None:
        levels = tree_levels([leaf_hash(s) for s in statements])
        root = BatchRoot(root=levels[-1][0], size=len(statements), attestation=self.attestation_digest)
        seal = self.key.seal(root.encode())
        for index, (statement, job) in enumerate(zip(statements, jobs, strict=True)):
            receipt = encode_receipt(statement, seal, index, inclusion_path(levels, index))
            if job.future is not None:
                job.future.set_result(receipt)
        with self._cond:
            self._outstanding -= len(jobs)
            self.receipts_issued += len(jobs)
            self.batches_sealed += 1
            self._cond.notify_all()
