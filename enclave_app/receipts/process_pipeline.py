"""The receipt pipeline with its sealer in a child process.

The threaded :class:`~enclave_app.receipts.pipeline.ReceiptPipeline` shares the GIL between the
inference thread and the sealing thread; docs/receipts.md §10 measures that contention as the
floor of its overhead. Here the receipt work runs in a separate process with its own interpreter
(:mod:`enclave_app.receipts.sealer_process`), fed through a shared-memory ring of fixed-size
slots (:mod:`enclave_app.receipts.ring` has the layout):

* A response first *reserves* the next slot (its sequence number is its position in the ring),
  then fills it, then *publishes* it by writing its sequence number into the slot's ready word.
  :meth:`ProcessReceiptPipeline.submit` fills the slot with the canonical tensor encodings
  (``trustdial_verifier._internal.tensors`` §2, headers cached per layout), params and nonce after the response
  exists; :class:`~enclave_app.receipts.bound_model.BoundModel` has onnxruntime read its inputs
  from and write its outputs into the slot, so the inference side only copies the inputs in and
  writes the nonce. Nothing is pickled per response.
* The sealer reads slots strictly in sequence order, so a slot reserved but not yet published
  holds the ones after it back; a response that fails after reserving publishes its slot as
  void and gets an error record instead of a receipt.
* One message per sealed batch goes back through a pipe; a reader thread in the parent resolves
  futures / calls ``on_receipt`` in order.
* A submitted response whose encodings would not fit its slot (``slot_size``) is committed by
  ``submit`` itself (SHA-256 over the same canonical encoding) and the slot carries the two
  digests instead (flag ``DIGESTS``). Params that do not fit are refused before reserving, with
  :class:`SealerProcessError` ``RECEIPT_SLOT_OVERFLOW``; a nonce over ``MAX_NONCE`` bytes with
  ``RECEIPT_NONCE_TOO_LONG``. Malformed tensors raise ``TensorError``.
* If the sealer process dies, every outstanding future and every later call fails with
  ``SEALER_DIED``; waits for ring space and ``drain`` give up with ``SEALER_TIMEOUT``.
  :meth:`ProcessReceiptPipeline.close` waits for published responses to be sealed, stops the
  child and unlinks the shared memory.

The ready and index words are single aligned 8-byte stores, written after the slot's bytes
(x86-64 keeps store order; on other CPUs the pipeline refuses to start with
``SEALER_UNSUPPORTED_PLATFORM`` and the server defaults to the thread); the sealer publishes
its own CPU time after every seal (:meth:`child_cpu_seconds`) so benchmarks can count the
second core.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from hashlib import sha256
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import cbor2
from cryptography.hazmat.primitives import serialization
from trustdial_verifier.errors import VerificationError

from enclave_app.receipts.canonical_parts import CanonicalParts
from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.ring import (
    BODY_AT,
    CLOSING,
    CONTROL_BYTES,
    CPU_AT,
    DIGESTS,
    FLUSH,
    MAX_NONCE,
    NONCE,
    NONCE_AT,
    OP_AT,
    OP_CODES,
    OPS,
    READ,
    READY,
    RECORD,
    SLEEPING,
    STATIC,
    STATIC_AT,
    TIMESTAMP,
    VOID,
    WRITER_IDLE,
    WRITTEN,
    SealerProcessError,
    ring_supported,
    slot_offset,
)


class ProcessReceiptPipeline:
    """Same interface as ``ReceiptPipeline`` (``submit`` / ``drain`` / ``close``); the receipt
    work runs in a sealer process fed through a shared-memory ring of fixed-size slots.

    ``clock=None`` (the default) lets the sealer stamp each response when it reads it, so the
    inference side does not read a clock; a callable stamps at submit (tests use a fixed one).

    With ``loop`` (the server's event loop) the sealer's messages are read by that loop and the
    futures are asyncio futures of it, resolved there; ``drain`` and ``close`` must then be called
    from the loop's thread (they read the remaining messages themselves). Without it a reader
    thread resolves ``concurrent.futures`` futures."""

    def __init__(
        self,
        key: ReceiptKey,
        attestation_digest: bytes,
        *,
        max_batch: int = 64,
        max_wait: float = 0.002,
        clock: Callable[[], float] | None = None,
        poll: float = 0.0001,
        on_receipt: Callable[[bytes], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        slots: int = 64,
        slot_size: int = 16384,
        timeout: float = 10.0,
        start_timeout: float = 60.0,
    ) -> None:
        if not ring_supported():
            raise SealerProcessError(
                "SEALER_UNSUPPORTED_PLATFORM",
                f"the shared-memory ring needs x86-64's store order, found {platform.machine()!r}: use the thread",
            )
        if max_batch < 1 or max_wait < 0 or poll <= 0 or slots < 1 or timeout <= 0:
            raise ValueError("max_batch >= 1, max_wait >= 0, poll > 0, slots >= 1, timeout > 0")
        if slot_size < BODY_AT + 64 or slot_size % 64:
            raise ValueError(f"slot_size must be a multiple of 64 of at least {BODY_AT + 64}")
        self._releases: list[Callable[[], None]] = []
        self.key = key
        self.attestation_digest = attestation_digest
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.slots = slots
        self.slot_size = slot_size
        self.timeout = timeout
        self._clock = clock
        self._on_receipt = on_receipt
        self._parts = CanonicalParts()
        self._offsets = [slot_offset(index, slot_size) for index in range(slots)]
        #: which bound model's static header and tensor headers slot i holds (None: a submit's)
        self.owners: list[object | None] = [None] * slots
        self._lock = threading.Lock()
        self._done = threading.Condition()
        self._futures: dict[int, Future[bytes]] = {}
        self._written = 0  # slots reserved == the last sequence number handed out
        self._finished = 0
        self._closed = False
        self._dead: SealerProcessError | None = None
        self._refusal: SealerProcessError | None = None  # why reserve() refuses: dead, else closed
        self.receipts_issued = 0
        self.batches_sealed = 0
        self._shm = SharedMemory(create=True, size=CONTROL_BYTES + slots * slot_size)
        if self._shm.buf is None:
            raise SealerProcessError("SEALER_START", "the shared memory has no buffer")
        self.buf: memoryview = self._shm.buf
        self.buf[:CONTROL_BYTES] = bytes(CONTROL_BYTES)
        self._words = self.buf.cast("Q")
        for offset in self._offsets:
            self._words[offset >> 3] = 0
        self._control = self.buf[:CONTROL_BYTES].cast("Q")
        self._cpu = self.buf[CPU_AT : CPU_AT + 8].cast("d")
        read_end, write_end = os.pipe()
        self._conn: Connection = Connection(read_end, writable=False)
        # the sealer waits on this pipe when the ring is empty; publish writes a byte if it does
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._fence = threading.Lock()
        key_der = key.private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        config = {
            "shm": self._shm.name, "fd": write_end, "key": key_der, "key_type": key.key_type,
            "attestation": attestation_digest, "max_batch": max_batch, "max_wait": max_wait,
            "poll": min(poll, max_wait) if max_wait > 0 else poll, "slots": slots, "slot_size": slot_size,
            "parent_pid": os.getpid(), "wake_fd": self._wake_read,
        }  # fmt: skip
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "enclave_app.receipts.sealer_process"],
                stdin=subprocess.PIPE, pass_fds=(write_end, self._wake_read), close_fds=True,
            )  # fmt: skip
        except OSError as err:
            os.close(write_end)
            os.close(self._wake_read)
            self._teardown()
            raise SealerProcessError("SEALER_START", f"the sealer process failed to start: {err}") from err
        os.close(write_end)
        os.close(self._wake_read)
        try:
            if self._process.stdin is None:
                raise SealerProcessError("SEALER_START", "the sealer process has no stdin")
            self._process.stdin.write(cbor2.dumps(config))  # the key crosses once, through a pipe
            self._process.stdin.close()
            if not self._conn.poll(start_timeout) or self._conn.recv_bytes() != READY:
                raise SealerProcessError("SEALER_START", f"the sealer process did not start within {start_timeout} s")
        except (SealerProcessError, EOFError, OSError) as err:
            self._teardown()
            if isinstance(err, SealerProcessError):
                raise
            raise SealerProcessError("SEALER_START", f"the sealer process failed to start: {err}") from err
        self._loop = loop
        self._reader: threading.Thread | None = None
        if loop is None:
            self._reader = threading.Thread(target=self._read, name="receipt-sealer-reader", daemon=True)
            self._reader.start()
        else:  # the loop reads the sealer's messages: futures resolve without a thread hop or a wake-up
            loop.add_reader(self._conn.fileno(), self._on_readable)

    @property
    def child_pid(self) -> int | None:
        return self._process.pid

    def child_cpu_seconds(self) -> float:
        """The sealer process's CPU time (user + system), as it published it after its last seal."""
        return float(self._cpu[0])

    def slot_offset(self, seq: int) -> int:
        return self._offsets[(seq - 1) % self.slots]

    def reserve(self) -> int:
        """Take the next slot; returns its sequence number. The caller must then :meth:`publish`
        (or :meth:`publish_void`) it: the sealer waits for it before any later one."""
        with self._lock:
            if self._refusal is not None:  # dead or closed
                raise self._refusal
            written = self._written
            control = self._control
            if written - control[READ] >= self.slots:
                self._wait_for_space(written)
            self._written = control[WRITTEN] = written + 1
        return written + 1

    def publish(self, seq: int, nonce: bytes, want_future: bool) -> Future[bytes] | None:
        """Write the nonce (and the time, with a clock) into a filled slot, then hand it over."""
        offset = self._offsets[(seq - 1) % self.slots]
        NONCE.pack_into(self.buf, offset + NONCE_AT, len(nonce), nonce)
        if self._clock is not None:
            TIMESTAMP.pack_into(self.buf, offset + STATIC_AT, int(self._clock() * 1000))
        future: Future[bytes] | None = None
        if want_future:
            future = self._futures[seq] = Future() if self._loop is None else self._loop.create_future()  # type: ignore[assignment]
        self._words[offset >> 3] = seq
        self._wake()
        return future

    def writer_idle(self, idle: bool) -> None:
        """The writer side says it is about to block with nothing to run (``True``) or runs again:
        while it is idle no response is about to be published, so the sealer seals an open batch
        at once instead of waiting ``poll`` for more (the server's event loop calls this around its
        blocking waits; ``enclave_app.loop_idle``)."""
        self._control[WRITER_IDLE] = 1 if idle else 0
        if idle:
            self._wake()

    def _wake(self) -> None:
        """After a store the sealer must see: write a byte to its wake pipe if it is waiting."""
        with self._fence:  # store the ready word, then load the sleeping word (sealer_process docstring)
            pass
        if self._control[SLEEPING]:
            try:
                os.write(self._wake_write, b"\x01")
            except (BlockingIOError, BrokenPipeError):
                pass  # a full pipe wakes it anyway; a closed one means it is gone (the reader reports that)

    def publish_void(self, seq: int) -> None:
        """Hand over a slot whose response failed: the sealer skips it with an error record."""
        offset = self._offsets[(seq - 1) % self.slots]
        self.owners[(seq - 1) % self.slots] = None
        self.buf[offset + OP_AT] = VOID
        self._words[offset >> 3] = seq
        self._wake()

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
        """Copy one response into the ring; the future yields the encoded receipt."""
        op_code = OP_CODES.get(op)
        if op_code is None or len(model) != 32:
            raise ValueError(f"expected op in {OPS} and a 32-byte model sha256, found {op!r}, {len(model)} bytes")
        check_nonce(nonce)
        in_parts, in_size = self._parts.parts(inputs)
        out_parts, out_size = self._parts.parts(outputs)
        raw_params = cbor2.dumps(dict(params), canonical=True) if params else b""
        flags = 0
        if BODY_AT + len(raw_params) + in_size + out_size > self.slot_size:
            # too big to copy: commit here and hand the sealer the two digests instead
            flags, in_size, out_size = DIGESTS, 32, 32
            in_parts = [_digest(in_parts)]
            out_parts = [_digest(out_parts)]
        if BODY_AT + len(raw_params) + in_size + out_size > self.slot_size:
            raise SealerProcessError(
                "RECEIPT_SLOT_OVERFLOW",
                f"expected params of at most {self.slot_size - BODY_AT - 64} bytes, found {len(raw_params)}",
            )
        seq = self.reserve()
        index = (seq - 1) % self.slots
        offset = self._offsets[index]
        buf = self.buf
        self.owners[index] = None
        STATIC.pack_into(buf, offset + STATIC_AT, 0, in_size, out_size, len(raw_params), op_code, flags, BODY_AT, model)
        end = offset + BODY_AT
        if raw_params:
            pos, end = end, end + len(raw_params)
            buf[pos:end] = raw_params
        for part in in_parts:
            pos, end = end, end + len(part)
            buf[pos:end] = part
        for part in out_parts:
            pos, end = end, end + len(part)
            buf[pos:end] = part
        return self.publish(seq, nonce, want_future)

    def _wait_for_space(self, written: int) -> None:
        deadline = time.monotonic() + self.timeout
        while written - self._control[READ] >= self.slots:
            if self._dead is not None:
                raise self._dead
            if time.monotonic() > deadline:
                raise SealerProcessError(
                    "SEALER_TIMEOUT", f"the ring stayed full ({self.slots} slots) for {self.timeout} s"
                )
            time.sleep(0.00005)

    def drain(self) -> None:
        """Block until every reserved response has its receipt (or error); raises when the sealer
        died or did not answer within ``timeout``."""
        with self._lock:
            if self._closed:  # close() already waited for every receipt (or the sealer died)
                if self._dead is not None:
                    raise self._dead
                return
            target = self._written
        self._control[FLUSH] = target
        self._wake()
        deadline = time.monotonic() + self.timeout
        if self._loop is not None:  # nobody else reads the pipe while this thread waits
            while self._finished < target and self._dead is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SealerProcessError(
                        "SEALER_TIMEOUT", f"expected {target} receipts within {self.timeout} s, found {self._finished}"
                    )
                if self._conn.poll(min(remaining, 0.05)):
                    self._on_readable()
            if self._dead is not None:
                raise self._dead
            return
        with self._done:
            while self._finished < target:
                if self._dead is not None:
                    raise self._dead
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SealerProcessError(
                        "SEALER_TIMEOUT", f"expected {target} receipts within {self.timeout} s, found {self._finished}"
                    )
                self._done.wait(min(remaining, 0.05))

    def close(self) -> None:
        """Seal everything submitted, stop the sealer process, unlink the shared memory."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._refusal is None:
                self._refusal = SealerProcessError("PIPELINE_CLOSED", "the receipt pipeline is closed")
            self._control[CLOSING] = 1
            self._wake()
        if self._reader is not None:
            self._reader.join(self.timeout)
        else:
            self._read_to_end()
        self._teardown()

    def __enter__(self) -> ProcessReceiptPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _teardown(self) -> None:
        process = getattr(self, "_process", None)
        if process is not None:
            try:
                process.wait(self.timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(self.timeout)
        self._conn.close()
        for fd in (self._wake_write,):
            with contextlib.suppress(OSError):
                os.close(fd)
        for view in (self._words, self._control, self._cpu):
            view.release()
        self.on_teardown()
        self._shm.close()
        self._shm.unlink()

    def on_close(self, release: Callable[[], None]) -> None:
        """Register a callback that drops references into the ring (called before it is unmapped)."""
        self._releases.append(release)

    def on_teardown(self) -> None:
        for release in self._releases:
            release()

    def _read(self) -> None:
        """The reader thread (no loop): every message until the sealer's end of the pipe closes."""
        while True:
            try:
                message = self._conn.recv_bytes()
            except (EOFError, OSError):
                break
            self._deliver(message)
        self._ended()

    def _on_readable(self) -> None:
        """The loop's reader callback: the messages available now (a message is written whole)."""
        try:
            while True:
                self._deliver(self._conn.recv_bytes())
                if not self._conn.poll(0):
                    return
        except (EOFError, OSError):
            self._stop_reading()
            self._ended()

    def _stop_reading(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(ValueError, RuntimeError, OSError):
                self._loop.remove_reader(self._conn.fileno())

    def _read_to_end(self) -> None:
        """close() with a loop: read from this thread until the sealer has finished and gone."""
        self._stop_reading()
        deadline = time.monotonic() + self.timeout
        try:
            while time.monotonic() < deadline:
                if self._conn.poll(min(0.05, max(0.0, deadline - time.monotonic()))):
                    self._deliver(self._conn.recv_bytes())
        except (EOFError, OSError):
            pass
        self._ended()

    def _deliver(self, message: bytes) -> None:
        on_receipt = self._on_receipt
        futures = self._futures
        pos, count, issued = 0, 0, 0
        while pos < len(message):
            seq, kind, length = RECORD.unpack_from(message, pos)
            pos += RECORD.size
            payload = message[pos : pos + length]
            pos += length
            count += 1
            future = futures.pop(seq, None)
            if kind == 0:
                issued += 1
                if on_receipt is not None:
                    on_receipt(payload)
                if future is not None and not future.done():  # done: its caller gave up (cancelled)
                    future.set_result(payload)
            elif future is not None and not future.done():
                code, _, reason = payload.decode("utf-8", "replace").partition("\x00")
                future.set_exception(VerificationError(code, reason))
        with self._done:
            self._finished += count
            self.receipts_issued += issued
            self.batches_sealed += issued > 0
            self._done.notify_all()

    def _ended(self) -> None:
        """The sealer's end of the pipe closed: after close() that is the end; otherwise it died."""
        futures = self._futures
        try:
            self._process.wait(1.0)
        except subprocess.TimeoutExpired:
            pass  # still running with its pipe closed: reported as dead below, killed by close()
        with self._done:
            if not (self._closed and self._finished >= self._written):
                self._dead = self._refusal = SealerProcessError(
                    "SEALER_DIED",
                    f"the sealer process (pid {self._process.pid}) ended with exit code {self._process.returncode} "
                    f"with {self._written - self._finished} receipts outstanding",
                )
                for future in list(futures.values()):
                    if not future.done():
                        future.set_exception(self._dead)
                futures.clear()
            self._done.notify_all()


def _digest(parts: list[Any]) -> bytes:
    digest = sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


def check_nonce(nonce: bytes) -> None:
    if len(nonce) > MAX_NONCE:
        raise SealerProcessError(
            "RECEIPT_NONCE_TOO_LONG", f"expected a nonce of at most {MAX_NONCE} bytes, found {len(nonce)}"
        )


__all__ = ["ProcessReceiptPipeline", "SealerProcessError", "check_nonce"]
