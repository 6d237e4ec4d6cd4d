"""The shared-memory ring between the inference side and the sealer process: its geometry,
the slot layout and the error type. One writer side (any number of threads in the enclave's
process), one reader (the sealer process).

Control block (``CONTROL_BYTES``, u64 words): 0 reserved slots, 1 slots the sealer has read
(each one is free again once read), 2 closing flag, 3 flush target (drain), 4 sleeping flag (the
sealer is about to wait on its wake pipe: a writer that publishes then writes one byte to it),
5 writer idle (the server's event loop is blocked with nothing to run: no response is about to
be published, so an open batch is sealed at once); f64 at byte 64: the sealer's CPU seconds.

Slot ``i`` of the ring starts at ``CONTROL_BYTES + i * slot_size`` (every offset a multiple of
8). Responses take slots in sequence order: the response with sequence number ``seq`` lives in
slot ``(seq - 1) % slots``, so the sequence number is never written by the inference side, and
the sealer processes slots strictly in that order.

======  =====  ======================================================================
offset  size   field
======  =====  ======================================================================
0       8      ready word: ``seq`` once the slot is filled (the publish, written last)
8       8      timestamp_ms, or 0: the sealer stamps the response when it reads it
16      4      input bytes (the canonical tensor encoding of the inputs)
20      4      output bytes (the canonical tensor encoding of the outputs)
24      4      params bytes (canonical CBOR), 0 if none
28      1      op code (``OPS`` index); ``VOID`` for a response that failed after taking
               its slot: the sealer answers it with an error record, no receipt
29      1      flags: ``DIGESTS`` = the body holds the two commitments (32 bytes each)
               instead of the encodings (responses too big for a slot; hashed by the writer)
30      2      body offset in the slot (at least ``BODY_AT``; a bound model aligns its data)
32      32     model sha256
64      1      nonce length (at most ``MAX_NONCE``)
65      64     nonce, zero padded
136     ...    body (at the body offset): params, canonical inputs, canonical outputs, back to back
======  =====  ======================================================================
"""

from __future__ import annotations

import platform
import struct

CONTROL_BYTES = 128
WRITTEN, READ, CLOSING, FLUSH, SLEEPING, WRITER_IDLE = 0, 1, 2, 3, 4, 5
CPU_AT = 64
OPS = ("infer", "generate", "llm-completion", "llm-chunk")
OP_CODES = {op: code for code, op in enumerate(OPS)}
VOID = 255
MAX_NONCE = 64
#: timestamp_ms, input bytes, output bytes, params bytes, op code, flags, body offset, model sha256 (at offset 8)
STATIC = struct.Struct("<QIIIBBH32s")
DIGESTS = 1
STATIC_AT = 8
OP_AT = 28
TIMESTAMP = struct.Struct("<Q")
#: nonce length and the nonce (at offset 64)
NONCE = struct.Struct(f"<B{MAX_NONCE}s")
NONCE_AT = 64
BODY_AT = 136
#: per record in a message from the sealer: seq, kind (0 receipt, 1 error), payload length
RECORD = struct.Struct("<QBI")
READY = b"ready"


class SealerProcessError(RuntimeError):
    """The sealer process cannot take or finish a response (stable ``code``)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


#: CPUs whose stores become visible to other cores in program order (x86-64's TSO): the ring's
#: publish (body first, ready word last, plain stores from Python) relies on it. Elsewhere (e.g.
#: aarch64, where a Nitro enclave can also run) it would need barriers Python does not offer.
STORE_ORDERED_MACHINES = frozenset({"x86_64", "amd64", "AMD64"})


def ring_supported(machine: str | None = None) -> bool:
    return (platform.machine() if machine is None else machine) in STORE_ORDERED_MACHINES


def slot_offset(index: int, slot_size: int) -> int:
    return CONTROL_BYTES + index * slot_size


__all__ = ["SealerProcessError", "ring_supported", "slot_offset"]
