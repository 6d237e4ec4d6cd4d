"""The step nonce: what each enclave step of a composite receipt must sign, binding it to this request, this
policy and its position in the pipeline."""

from __future__ import annotations

import hashlib
import struct

STEP_NONCE_DOMAIN = b"trustdial.composite-step/1\x00"


def derive_step_nonce(request_nonce: str, policy_hash: str, index: int, segment: str) -> str:
    """The nonce a step's TEE receipt must carry: binds it to this request, policy and position."""
    material = (
        STEP_NONCE_DOMAIN
        + bytes.fromhex(request_nonce)
        + bytes.fromhex(policy_hash)
        + struct.pack(">I", index)
        + segment.encode("utf-8")
    )
    return hashlib.sha256(material).hexdigest()
