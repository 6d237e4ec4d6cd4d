"""The receipt pipeline with its sealer in a child process (a bench mode; the server does not use it).

The threaded :class:`~enclave_app.receipts.pipeline.ReceiptPipeline` shares the GIL between the
inference thread and the sealing thread; docs/receipts.md §10 measures that contention as the
floor of its overhead. Here the receipt work runs in a separate process with its own interpreter:

* ``submit`` (inference thread) writes one fixed-size slot of a shared-memory ring
  (``multiprocessing.shared_memory``): a packed header (sequence number, timestamp, queue time,
  lengths, op, model sha256), the nonce, the canonical CBOR of the params (if any), and the
  *canonical tensor encodings* of the inputs and of the outputs (``verifier.tensors`` §2: MAGIC,
  count, then header and little-endian data per tensor, names in sorted order; headers cached
  per layout). Nothing is pickled per response. Then it bumps the ring's write index.
* The sealer process (``python -m`` this module; the receipt key goes to it once, as PKCS#8 DER
  through its stdin, at start; no main-module re-import as with multiprocessing's ``spawn``)
  polls the write index, hashes each slot's two regions in place (the commitments are SHA-256 of
  exactly those bytes), encodes the statement, and seals micro-batches with the same rules as
  the threaded mode: full at ``max_batch``, or once the oldest response waited ``max_wait``, or
  when :meth:`ProcessReceiptPipeline.drain` asks. One message per sealed batch goes back through
  a pipe; a reader thread in the parent resolves futures / calls ``on_receipt`` in order.
* A response whose slot would not fit (``slot_size``) is refused at ``submit`` with
  :class:`SealerProcessError` ``RECEIPT_SLOT_OVERFLOW`` before it gets a sequence number; there
  is no fallback to the threaded path. Malformed tensors raise ``TensorError`` at ``submit``.
* If the sealer process dies, every outstanding future and every later call fails with
  ``SEALER_DIED``; waits for ring space and ``drain`` give up with ``SEALER_TIMEOUT``.
  :meth:`ProcessReceiptPipeline.close` seals what is queued, stops the child and unlinks the
  shared memory.

The index words are single aligned 8-byte stores, written after the slot's bytes (x86-64 keeps
store order); the sealer publishes its own CPU time after every seal (:meth:`child_cpu_seconds`)
so benchmarks can count the second core.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from hashlib import sha256
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import cbor2
import numpy as np
from cryptography.hazmat.primitives import serialization
from verifier.errors import VerificationError
from verifier.receipts.model import BatchRoot
from verifier.tensors import DTYPE_SIZES, MAGIC, MAX_NAME_BYTES, Tensor, TensorError, tensor_header

from enclave_app.receipts.fast_encoding import StatementEncoder, encode_batch_receipts
from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.sealer import tree_levels

#: seq, timestamp_ms, queued (monotonic s), input bytes, output bytes, params bytes, op code, pad,
#: nonce bytes, model sha256
SLOT_HEADER = struct.Struct("<QQdIIIBBH32s")
#: per record in a message from the sealer: seq, kind (0 receipt, 1 error), payload length
RECORD = struct.Struct("<QBI")
CONTROL_BYTES = 128  # u64 words: 0 written, 1 read, 2 closing, 3 flush target; f64 at 64: sealer CPU s
OPS = ("infer", "generate")
_OP_CODES = {op: code for code, op in enumerate(OPS)}
_READY = b"ready"


class SealerProcessError(RuntimeError):
    """The sealer process cannot take or finish a response (stable ``code``)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class CanonicalParts:
    """The canonical tensor encoding of a tensor set as a list of buffers (headers cached per layout)."""

    def __init__(self) -> None:
        self._single: dict[tuple[Any, ...], tuple[bytes, int]] = {}
        self._layouts: dict[tuple[Any, ...], list[bytes]] = {}

    def parts(self, values: Mapping[str, Any]) -> tuple[list[Any], int]:
        if len(values) == 1:  # the hot path: one array whose (name, dtype, shape) was seen before
            ((name, value),) = values.items()
            if type(value) is np.ndarray:
                cached = self._single.get((name, value.dtype, value.shape))  # never big-endian or bool
                if cached is not None:
                    try:
                        return [cached[0], value.data.cast("B")], cached[1]
                    except TypeError:  # not C-contiguous, or empty: the general path handles it
                        pass
        items = sorted(values.items(), key=lambda item: item[0].encode("utf-8"))
        key = tuple((name, _dtype_key(value), value.shape) for name, value in items)
        headers = self._layouts.get(key)
        if headers is None:
            headers = self._layout(key, items)
        parts: list[Any] = []
        size = 0
        for header, (_, value) in zip(headers, items, strict=True):
            data = value.data if isinstance(value, Tensor) else _canonical_array(value).reshape(-1).view(np.uint8).data
            parts.append(header)
            parts.append(data)
            size += len(header) + len(data)
        if not items:
            parts.append(headers[0])
            size = len(headers[0])
        return parts, size

    def _layout(self, key: tuple[Any, ...], items: list[tuple[str, Any]]) -> list[bytes]:
        headers = []
        for name, value in items:
            if not isinstance(name, str) or not name or len(name.encode("utf-8")) > MAX_NAME_BYTES:
                raise TensorError("TENSOR_NAME", f"expected a non-empty name of at most {MAX_NAME_BYTES} bytes")
            dtype = value.dtype if isinstance(value, Tensor) else value.dtype.name
            if dtype not in DTYPE_SIZES:
                raise TensorError("TENSOR_DTYPE", f"expected one of {sorted(DTYPE_SIZES)}, found dtype {dtype!r}")
            shape = tuple(int(d) for d in value.shape)
            size = DTYPE_SIZES[dtype] * int(np.prod(shape, dtype=np.int64))
            headers.append(tensor_header(name, Tensor(dtype, shape, bytes(size))))
        prefix = MAGIC + struct.pack(">I", len(items))
        headers = [prefix + headers[0], *headers[1:]] if headers else [prefix]
        if len(self._layouts) > 4096:
            self._layouts.clear()
            self._single.clear()
        self._layouts[key] = headers
        if len(items) == 1 and type(items[0][1]) is np.ndarray:
            name, value = items[0]
            if value.dtype.byteorder != ">" and value.dtype != np.bool_:
                self._single[name, value.dtype, value.shape] = (headers[0], len(headers[0]) + value.nbytes)
        return headers


def _dtype_key(value: Any) -> Any:
    return ("tensor", value.dtype) if isinstance(value, Tensor) else value.dtype


def _canonical_array(array: Any) -> Any:
    converted = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    if converted.dtype == np.bool_ and converted.view(np.uint8).max(initial=0) > 1:
        raise TensorError("TENSOR_BOOL", "expected bool bytes to be 0 or 1")
    return converted


class ProcessReceiptPipeline:
    """Same interface as ``ReceiptPipeline`` (``submit`` / ``drain`` / ``close``); the receipt
    work runs in a sealer process fed through a shared-memory ring of fixed-size slots."""

    def __init__(
        self,
        key: ReceiptKey,
        attestation_digest: bytes,
        *,
        max_batch: int = 64,
        max_wait: float = 0.002,
        clock: Callable[[], float] = time.time,
        poll: float = 0.0005,
        on_receipt: Callable[[bytes], None] | None = None,
        slots: int = 256,
        slot_size: int = 16384,
        timeout: float = 10.0,
        start_timeout: float = 60.0,
    ) -> None:
        if max_batch < 1 or max_wait < 0 or poll <= 0 or slots < 1 or slot_size < SLOT_HEADER.size or timeout <= 0:
            raise ValueError("max_batch >= 1, max_wait >= 0, poll > 0, slots >= 1, slot_size >= header, timeout > 0")
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
        self._offsets = [CONTROL_BYTES + index * slot_size for index in range(slots)]
        self._headers: dict[int, struct.Struct] = {}
        self._lock = threading.Lock()
        self._done = threading.Condition()
        self._futures: dict[int, Future[bytes]] = {}
        self._seq = 0
        self._written = 0
        self._finished = 0
        self._closed = False
        self._dead: SealerProcessError | None = None
        self.receipts_issued = 0
        self.batches_sealed = 0
        self._shm = SharedMemory(create=True, size=CONTROL_BYTES + slots * slot_size)
        self._buf = self._shm.buf
        self._buf[:CONTROL_BYTES] = bytes(CONTROL_BYTES)
        self._control = self._buf[:64].cast("Q")
        self._cpu = self._buf[64:72].cast("d")
        read_end, write_end = os.pipe()
        self._conn: Connection = Connection(read_end, writable=False)
        key_der = key.private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        config = {
            "shm": self._shm.name, "fd": write_end, "key": key_der, "key_type": key.key_type,
            "attestation": attestation_digest, "max_batch": max_batch, "max_wait": max_wait,
            "poll": min(poll, max_wait) if max_wait > 0 else poll, "slots": slots, "slot_size": slot_size,
            "parent_pid": os.getpid(),
        }  # fmt: skip
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__], stdin=subprocess.PIPE, pass_fds=(write_end,), close_fds=True
            )
        except OSError as err:
            os.close(write_end)
            self._teardown()
            raise SealerProcessError("SEALER_START", f"the sealer process failed to start: {err}") from err
        os.close(write_end)
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(cbor2.dumps(config))  # the key crosses once, through a pipe
            self._process.stdin.close()
            if not self._conn.poll(start_timeout) or self._conn.recv_bytes() != _READY:
                raise SealerProcessError("SEALER_START", f"the sealer process did not start within {start_timeout} s")
        except (SealerProcessError, EOFError, OSError) as err:
            self._teardown()
            if isinstance(err, SealerProcessError):
                raise
            raise SealerProcessError("SEALER_START", f"the sealer process failed to start: {err}") from err
        self._reader = threading.Thread(target=self._read, name="receipt-sealer-reader", daemon=True)
        self._reader.start()

    @property
    def child_pid(self) -> int | None:
        return self._process.pid

    def child_cpu_seconds(self) -> float:
        """The sealer process's CPU time (user + system), as it published it after its last seal."""
        return float(self._cpu[0])

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
        op_code = _OP_CODES.get(op)
        if op_code is None or len(model) != 32:
            raise ValueError(f"expected op in {OPS} and a 32-byte model sha256, found {op!r}, {len(model)} bytes")
        in_parts, in_size = self._parts.parts(inputs)
        out_parts, out_size = self._parts.parts(outputs)
        raw_params = cbor2.dumps(dict(params), canonical=True) if params else b""
        size = SLOT_HEADER.size + len(nonce) + len(raw_params) + in_size + out_size
        if size > self.slot_size or len(nonce) > 0xFFFF:
            raise SealerProcessError(
                "RECEIPT_SLOT_OVERFLOW",
                f"expected a response of at most {self.slot_size} bytes in its slot, found {size} "
                f"(nonce {len(nonce)} B, inputs {in_size} B, outputs {out_size} B)",
            )
        future: Future[bytes] | None = Future() if want_future else None
        control = self._control
        with self._lock:
            if self._dead is not None:
                raise self._dead
            if self._closed:
                raise SealerProcessError("PIPELINE_CLOSED", "the receipt pipeline is closed")
            written = self._written
            if written - control[1] >= self.slots:
                self._wait_for_space(written)
            self._seq = seq = self._seq + 1
            offset = self._offsets[written % self.slots]
            buf = self._buf
            header = self._headers.get(len(nonce))
            if header is None:  # the slot header and the nonce in one pack, a struct per nonce length
                header = self._headers[len(nonce)] = struct.Struct(SLOT_HEADER.format + f"{len(nonce)}s")
            header.pack_into(
                buf, offset, seq, int(self._clock() * 1000), time.monotonic(), in_size, out_size, len(raw_params),
                op_code, 0, len(nonce), model, nonce,
            )  # fmt: skip
            end = offset + header.size
            if raw_params:
                pos, end = end, end + len(raw_params)
                buf[pos:end] = raw_params
            for part in in_parts:
                pos, end = end, end + len(part)
                buf[pos:end] = part
            for part in out_parts:
                pos, end = end, end + len(part)
                buf[pos:end] = part
            if future is not None:
                self._futures[seq] = future
            self._written = written + 1
            control[0] = written + 1
        return future

    def _wait_for_space(self, written: int) -> None:
        deadline = time.monotonic() + self.timeout
        while written - self._control[1] >= self.slots:
            if self._dead is not None:
                raise self._dead
            if time.monotonic() > deadline:
                raise SealerProcessError(
                    "SEALER_TIMEOUT", f"the ring stayed full ({self.slots} slots) for {self.timeout} s"
                )
            time.sleep(0.00005)

    def drain(self) -> None:
        """Block until every submitted response has its receipt (or error); raises when the sealer
        died or did not answer within ``timeout``."""
        with self._lock:
            if self._closed:  # close() already waited for every receipt (or the sealer died)
                if self._dead is not None:
                    raise self._dead
                return
            target = self._seq
        self._control[3] = target
        deadline = time.monotonic() + self.timeout
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
            self._control[2] = 1
        self._reader.join(self.timeout)
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
        self._control.release()
        self._cpu.release()
        self._shm.close()
        self._shm.unlink()

    def _read(self) -> None:
        conn = self._conn
        on_receipt = self._on_receipt
        futures = self._futures
        while True:
            try:
                message = conn.recv_bytes()
            except (EOFError, OSError):
                break
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
                    if future is not None:
                        future.set_result(payload)
                elif future is not None:
                    code, _, reason = payload.decode("utf-8", "replace").partition("\x00")
                    future.set_exception(VerificationError(code, reason))
            with self._done:
                self._finished += count
                self.receipts_issued += issued
                self.batches_sealed += issued > 0
                self._done.notify_all()
        try:
            self._process.wait(1.0)
        except subprocess.TimeoutExpired:
            pass  # still running with its pipe closed: reported as dead below, killed by close()
        with self._done:
            if not (self._closed and self._finished >= self._seq):
                self._dead = SealerProcessError(
                    "SEALER_DIED",
                    f"the sealer process (pid {self._process.pid}) ended with exit code {self._process.returncode} "
                    f"with {self._seq - self._finished} receipts outstanding",
                )
                for future in list(futures.values()):
                    future.set_exception(self._dead)
                futures.clear()
            self._done.notify_all()


def _sealer_main(
    shm_name: str,
    conn: Connection,
    key_der: bytes,
    key_type: str,
    attestation: bytes,
    max_batch: int,
    max_wait: float,
    poll: float,
    slots: int,
    slot_size: int,
    parent_pid: int,
) -> None:
    """The sealer process: ring in, one message per sealed micro-batch out."""
    private_key = serialization.load_der_private_key(key_der, None)
    key = ReceiptKey(key_type, private_key)  # type: ignore[arg-type]
    shm = SharedMemory(name=shm_name)
    # Python 3.11 registers attached segments too; this process's tracker must not unlink the parent's
    resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    buf = shm.buf
    control = buf[:64].cast("Q")
    cpu = buf[64:72].cast("d")
    encoder = StatementEncoder(attestation)
    statements: list[bytes] = []
    leaves: list[bytes] = []
    seqs: list[int] = []
    oldest = 0.0

    def seal() -> None:
        levels = tree_levels(leaves)
        root = BatchRoot(root=levels[-1][0], size=len(statements), attestation=attestation)
        receipts = encode_batch_receipts(statements, key.seal(root.encode()), levels)
        conn.send_bytes(b"".join(RECORD.pack(s, 0, len(r)) + r for s, r in zip(seqs, receipts, strict=True)))
        statements.clear()
        leaves.clear()
        seqs.clear()
        cpu[0] = time.process_time()

    try:
        conn.send_bytes(_READY)
        read = 0
        while True:
            closing = control[2]  # read first: every slot written before close is visible by now
            written = control[0]
            took = read < written
            while read < written:
                offset = CONTROL_BYTES + (read % slots) * slot_size
                seq, timestamp_ms, queued, in_size, out_size, params_size, op_code, _, nonce_size, model = (
                    SLOT_HEADER.unpack_from(buf, offset)
                )
                pos = offset + SLOT_HEADER.size
                nonce = bytes(buf[pos : pos + nonce_size])
                pos += nonce_size
                params = cbor2.loads(bytes(buf[pos : pos + params_size])) if params_size else None
                pos += params_size
                input_digest = sha256(buf[pos : pos + in_size]).digest()
                pos += in_size
                output_digest = sha256(buf[pos : pos + out_size]).digest()
                read += 1
                control[1] = read  # the slot is free again
                try:
                    statement = encoder.encode(
                        OPS[op_code], model, input_digest, output_digest, nonce, timestamp_ms, seq, params
                    )
                except (VerificationError, ValueError, TypeError, KeyError) as err:
                    code = err.code if isinstance(err, VerificationError) else "RECEIPT_STATEMENT"
                    payload = f"{code}\x00{err}".encode()
                    conn.send_bytes(RECORD.pack(seq, 1, len(payload)) + payload)
                    continue
                if not statements:
                    oldest = queued
                statements.append(statement)
                leaves.append(sha256(b"\x00" + statement).digest())  # LEAF_PREFIX
                seqs.append(seq)
                if len(statements) >= max_batch:
                    seal()
            if statements and (closing or control[3] >= seqs[0] or time.monotonic() - oldest >= max_wait):
                seal()
            if closing and read == control[0] and not statements:
                break
            if not took:
                if os.getppid() != parent_pid:
                    break
                time.sleep(poll)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the parent is gone: nothing left to deliver to
    finally:
        control.release()
        cpu.release()
        shm.close()
        conn.close()


def _child_entry() -> None:
    config = cbor2.loads(sys.stdin.buffer.read())
    _sealer_main(
        config["shm"], Connection(config["fd"], readable=False), config["key"], config["key_type"],
        config["attestation"], config["max_batch"], config["max_wait"], config["poll"], config["slots"],
        config["slot_size"], config["parent_pid"],
    )  # fmt: skip


if __name__ == "__main__":
    _child_entry()


__all__ = ["CanonicalParts", "ProcessReceiptPipeline", "SealerProcessError"]
