"""The receipt pipeline: responses in, receipts out, on a dedicated sealing thread
(or, with ``threaded=False``, inline in the caller's thread).

``submit`` (called by the inference path, in response order) only assigns the sequence number
and timestamp and appends the tensors to a deque; it wakes the sealing thread (one
``threading.Event.set``) only when that thread is asleep, so a stream of responses costs no
wake-up per response. The sealing thread does not poll: with nothing queued and no batch open it
sleeps until a submit (or ``drain`` / ``close``) wakes it; with a batch open it waits at most
``poll`` seconds for more. It computes the commitments, encodes the statements, and seals
micro-batches: a batch is signed once it holds ``max_batch`` statements, its oldest statement has
waited ``max_wait`` seconds, no new response arrived for a whole ``poll`` interval (nothing more to
amortize over: a lone request is not held for the budget), or :meth:`ReceiptPipeline.drain` asks
for everything now. Every receipt still carries its own inclusion path, so each response verifies
on its own. ``max_batch=1`` is the
per-request mode (one signature per response). onnxruntime releases the GIL, so on a
multi-core enclave the receipt work overlaps with the next inferences. Inline mode does the
same work in the submitting thread, a whole batch at once when it is full or when a submit finds
its latency budget spent (or on :meth:`ReceiptPipeline.drain`): between two inferences the
receipt code runs with cold caches, so doing 64 responses' work in one go costs measurably less
CPU than doing it one response at a time. The server uses the threaded mode. Either way the
tensors are hashed after ``submit`` returns: callers must not modify them until the receipt is out.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from hashlib import sha256
from typing import Any, NamedTuple

from trustdial_verifier.errors import VerificationError
from trustdial_verifier.unstable.receipts import BatchRoot

from enclave_app.receipts.fast_encoding import ArrayCommitter, StatementEncoder, encode_batch_receipts
from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.sealer import tree_levels


class _Job(NamedTuple):
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
        threaded: bool = True,
        poll: float = 0.0005,
        on_receipt: Callable[[bytes], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_wait < 0 or poll <= 0:
            raise ValueError("max_batch must be >= 1, max_wait >= 0 and poll > 0")
        self.key = key
        self.attestation_digest = attestation_digest
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._clock = clock
        self._committer = ArrayCommitter()
        self._encoder = StatementEncoder(attestation_digest)
        self._poll = min(poll, max_wait) if max_wait > 0 else poll
        self._lock = threading.Lock()  # sequence order == queue order, even with several submitters
        self._queue: deque[_Job] = deque()  # append / popleft are atomic: no lock with the sealer
        self._seq = 0
        self._closed = False
        self._flush = False  # set by drain: seal the open batch without waiting for the budget
        self._done = threading.Condition()  # drain waits here; notified once per sealed batch
        self._finished = 0  # responses whose receipt (or error) is out
        self.receipts_issued = 0
        self.batches_sealed = 0
        self._on_receipt = on_receipt  # called with every receipt, in sequence order, on the sealing thread
        self._statements: list[bytes] = []  # the open batch; touched only by the sealing thread
        self._leaves: list[bytes] = []
        self._jobs: list[_Job] = []
        self._pending: list[_Job] = []  # inline mode: submitted, not yet committed
        self._wake = threading.Event()  # set by submit / drain / close while the sealing thread sleeps
        self._sleeping = False
        self._thread: threading.Thread | None = None
        if threaded:
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
        with self._lock:
            if self._closed:
                raise RuntimeError("the receipt pipeline is closed")
            self._seq += 1
            now_ms = int(self._clock() * 1000)
            job = _Job(op, model, inputs, outputs, nonce, params, self._seq, now_ms, time.monotonic(), future)
            if self._thread is not None:
                self._queue.append(job)
                if self._sleeping:  # read after the append: a sealer that saw an empty queue is waiting
                    self._wake.set()
                return future
        # inline mode: the caller's thread does the receipt work, a whole batch at a time (the
        # commitment and encoding code then runs with warm caches between two inferences)
        pending = self._pending
        pending.append(job)
        if len(pending) >= self.max_batch or time.monotonic() - pending[0].queued >= self.max_wait:
            self._seal_pending()
        return future

    def _seal_pending(self) -> None:
        pending, self._pending = self._pending, []
        for job in pending:
            self._take(job)
        self._seal_open_batch()

    def seal_now(self) -> bool:
        """Inline mode: seal the open batch now; returns whether there was one (the server's event
        loop calls this before it blocks, see ``EnclaveService.loop_idle``)."""
        if self._thread is not None or not self._pending:
            return False
        self._seal_pending()
        return True

    def drain(self) -> None:
        """Block until every submitted response has its receipt (inline mode: seal the open batch)."""
        if self._thread is None:
            self._seal_pending()
            return
        with self._lock:
            target = self._seq
        self._flush = True
        self._wake.set()
        with self._done:
            while self._finished < target:
                self._done.wait(self._poll)
                self._flush = True
                self._wake.set()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        if self._thread is None:
            self._seal_pending()
        else:
            self._wake.set()
            self._thread.join()

    def _run(self) -> None:
        queue = self._queue
        idle = False  # the last pass found nothing new and slept a poll interval
        while True:
            closing = self._closed  # read first: every job submitted before close is queued by now
            took = bool(queue)
            while queue:
                self._take(queue.popleft())
            jobs = self._jobs
            if jobs and (
                closing or self._flush or (idle and not took) or time.monotonic() - jobs[0].queued >= self.max_wait
            ):
                self._flush = False
                self._seal_open_batch()
            if closing and not queue and not self._jobs:
                return
            idle = not took
            if idle:
                # sleeping is set before the queue is looked at again: a submit that appends after
                # this check sees it and wakes us; one that appended before is found by the check
                self._sleeping = True
                if not queue and not self._closed and not self._flush:
                    self._wake.wait(self._poll if self._jobs else None)
                self._sleeping = False
                self._wake.clear()  # a set after this finds the queue non-empty at the next pass

    def _take(self, job: _Job) -> None:
        """Add one response's statement to the open batch; seal the batch when it is full."""
        op, model, inputs, outputs, nonce, params, seq, timestamp_ms, _, _ = job
        commit = self._committer.commit
        try:
            statement = self._encoder.encode(
                op, model, commit(inputs), commit(outputs), nonce, timestamp_ms, seq, params
            )
        except VerificationError as err:  # an unencodable tensor: fail this response only
            self._fail(job, err)
            return
        self._statements.append(statement)
        self._leaves.append(sha256(b"\x00" + statement).digest())  # LEAF_PREFIX
        self._jobs.append(job)
        if len(self._jobs) >= self.max_batch:
            self._seal_open_batch()

    def _seal_open_batch(self) -> None:
        if self._jobs:
            statements, leaves, jobs = self._statements, self._leaves, self._jobs
            self._statements, self._leaves, self._jobs = [], [], []
            self._seal(statements, leaves, jobs)

    def _fail(self, job: _Job, err: Exception) -> None:
        if job.future is not None:
            job.future.set_exception(err)
        with self._done:
            self._finished += 1
            self._done.notify_all()

    def _seal(self, statements: list[bytes], leaves: list[bytes], jobs: list[_Job]) -> None:
        levels = tree_levels(leaves)
        root = BatchRoot(root=levels[-1][0], size=len(statements), attestation=self.attestation_digest)
        receipts = encode_batch_receipts(statements, self.key.seal(root.encode()), levels)
        if self._on_receipt is not None:
            for receipt in receipts:
                self._on_receipt(receipt)
        for job, receipt in zip(jobs, receipts, strict=True):
            if job.future is not None:
                job.future.set_result(receipt)
        with self._done:
            self._finished += len(jobs)
            self.receipts_issued += len(jobs)
            self.batches_sealed += 1
            self._done.notify_all()
