"""The sealer process: reads the shared-memory ring (``enclave_app.receipts.ring``) in sequence
order, commits, encodes and seals micro-batches, and sends one message per sealed batch back
through a pipe. Started by :class:`~enclave_app.receipts.process_pipeline.ProcessReceiptPipeline`
as ``python -m enclave_app.receipts.sealer_process``; its configuration (the receipt key as
PKCS#8 DER among it) arrives once, as CBOR, on stdin.

Per slot: wait until its ready word holds the expected sequence number, hash the canonical
input and output regions in place (the commitments are SHA-256 of exactly those bytes), stamp
the time if the writer left it to the sealer, encode the statement and its Merkle leaf, free
the slot. A batch is sealed when it is full, once its oldest response waited ``max_wait``, when
no new slot was published during a whole ``poll`` wait (a lone request is not held for the
budget), at once when every reserved slot has been read and the writer said it is idle (the
server's event loop is blocked: nothing is about to be published), on a drain's flush target,
or on close.

With nothing to read the sealer does not poll: it sets the ring's sleeping word, looks once more,
and waits on its wake pipe (``poll`` seconds while it holds an open batch or a slot is reserved,
``IDLE_WAIT`` when the ring is empty); a writer that publishes a slot while the word is set
writes one byte to the pipe. x86-64 may let a load pass an earlier store, so each side puts a
full fence between its store (the sleeping word; the ready word) and its load of the other's:
an uncontended lock acquire and release, which CPython implements with a locked instruction.
Were a wake-up missed anyway, the wait's timeout bounds what it costs; a response is never lost.
"""

from __future__ import annotations

import os
import select
import sys
import threading
import time
from hashlib import sha256
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

from cryptography.hazmat.primitives import serialization
from trustdial_verifier.errors import VerificationError
from trustdial_verifier.unstable.decoding import strict_cbor
from trustdial_verifier.unstable.receipts import BatchRoot

from enclave_app.receipts.fast_encoding import StatementEncoder, encode_batch_receipts
from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.ring import (
    CLOSING,
    CONTROL_BYTES,
    CPU_AT,
    DIGESTS,
    FLUSH,
    NONCE,
    NONCE_AT,
    OPS,
    READ,
    READY,
    RECORD,
    SLEEPING,
    STATIC,
    STATIC_AT,
    VOID,
    WRITER_IDLE,
    WRITTEN,
)
from enclave_app.receipts.sealer import tree_levels

#: seconds the sealer waits for work with an empty ring (it also checks that its parent lives)
IDLE_WAIT = 0.01


def seal_forever(
    shm_name: str,
    conn: Connection,
    key: ReceiptKey,
    attestation: bytes,
    *,
    max_batch: int,
    max_wait: float,
    poll: float,
    slots: int,
    slot_size: int,
    parent_pid: int,
    wake_fd: int | None = None,
) -> None:
    """Ring in, one message per sealed micro-batch out, until the parent closes or goes away."""
    shm = SharedMemory(name=shm_name)
    # Python 3.11 registers attached segments too; this process's tracker must not unlink the parent's
    resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    buf = shm.buf
    if buf is None:
        raise RuntimeError("the shared memory has no buffer")
    words = buf.cast("Q")
    control = buf[:CONTROL_BYTES].cast("Q")
    cpu = buf[CPU_AT : CPU_AT + 8].cast("d")
    encoder = StatementEncoder(attestation)
    fence = threading.Lock()
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

    def refuse(seq: int, code: str, reason: str) -> None:
        payload = f"{code}\x00{reason}".encode()
        conn.send_bytes(RECORD.pack(seq, 1, len(payload)) + payload)

    try:
        conn.send_bytes(READY)
        read = 0
        idle = False  # the last pass found nothing new and slept a poll interval
        while True:
            closing = control[CLOSING]  # read first: every slot published before close is visible now
            took = False
            while True:
                offset = CONTROL_BYTES + (read % slots) * slot_size
                seq = read + 1
                if words[offset >> 3] != seq:
                    break
                header = STATIC.unpack_from(buf, offset + STATIC_AT)
                timestamp_ms, in_size, out_size, params_size, op_code, flags, body_at, model = header
                nonce_size, padded = NONCE.unpack_from(buf, offset + NONCE_AT)
                pos = offset + body_at
                if op_code == VOID:
                    read += 1
                    control[READ] = read
                    refuse(seq, "INFERENCE_FAILED", "the response failed after it took its slot")
                    took = True
                    continue
                raw_params = bytes(buf[pos : pos + params_size])
                pos += params_size
                if flags & DIGESTS:  # committed by the writer: the response did not fit the slot
                    input_digest = bytes(buf[pos : pos + 32])
                    output_digest = bytes(buf[pos + 32 : pos + 64])
                else:
                    input_digest = sha256(buf[pos : pos + in_size]).digest()
                    pos += in_size
                    output_digest = sha256(buf[pos : pos + out_size]).digest()
                read += 1
                control[READ] = read  # the slot is free again
                took = True
                if not timestamp_ms:
                    timestamp_ms = int(time.time() * 1000)
                try:
                    params: Any = strict_cbor.decode(raw_params, floats=True) if raw_params else None
                    statement = encoder.encode(
                        OPS[op_code], model, input_digest, output_digest, padded[:nonce_size], timestamp_ms, seq, params
                    )
                except (VerificationError, ValueError, TypeError, KeyError, IndexError) as err:
                    refuse(seq, err.code if isinstance(err, VerificationError) else "RECEIPT_STATEMENT", str(err))
                    continue
                if not statements:
                    oldest = time.monotonic()
                statements.append(statement)
                leaves.append(sha256(b"\x00" + statement).digest())  # LEAF_PREFIX
                seqs.append(seq)
                if len(statements) >= max_batch:
                    seal()
            if statements and (
                closing
                or (idle and not took)
                or control[FLUSH] >= seqs[0]
                or (control[WRITER_IDLE] and control[WRITTEN] <= read)
                or time.monotonic() - oldest >= max_wait
            ):
                seal()
            if closing and read >= control[WRITTEN] and not statements:
                break
            idle = not took
            if idle:
                if os.getppid() != parent_pid:
                    break
                if wake_fd is None:
                    time.sleep(poll)
                    continue
                wait = IDLE_WAIT
                if statements:
                    wait = max(0.0, min(poll, max_wait - (time.monotonic() - oldest)))
                elif control[WRITTEN] > read:
                    wait = poll
                control[SLEEPING] = 1
                with fence:  # store the flag, then load the ready word (see the module docstring)
                    pass
                # look once more after raising the flag: a publish before it saw no flag and wrote no byte
                offset = CONTROL_BYTES + (read % slots) * slot_size
                if (
                    words[offset >> 3] != read + 1
                    and not control[CLOSING]
                    and not (statements and control[FLUSH] >= seqs[0])
                    and not (statements and control[WRITER_IDLE] and control[WRITTEN] <= read)
                ):
                    select.select([wake_fd], [], [], wait)
                control[SLEEPING] = 0
                try:
                    os.read(wake_fd, 4096)
                except BlockingIOError:
                    pass
    except (BrokenPipeError, ConnectionResetError):
        pass  # the parent is gone: nothing left to deliver to
    finally:
        words.release()
        control.release()
        cpu.release()
        shm.close()
        conn.close()


def main() -> None:
    config: Any = strict_cbor.decode(sys.stdin.buffer.read(), floats=True)  # written by the parent, still checked
    private_key = serialization.load_der_private_key(config["key"], None)
    seal_forever(
        config["shm"],
        Connection(config["fd"], readable=False),
        ReceiptKey(config["key_type"], private_key),  # type: ignore[arg-type]
        config["attestation"],
        max_batch=config["max_batch"],
        max_wait=config["max_wait"],
        poll=config["poll"],
        slots=config["slots"],
        slot_size=config["slot_size"],
        parent_pid=config["parent_pid"],
        wake_fd=config.get("wake_fd"),
    )


if __name__ == "__main__":
    main()
