"""Request limits shared by the enclave service and the gateway (which states them in its OpenAPI
document). Tensor-count limits live with the tensor wire format (``enclave_app.wire``)."""

from __future__ import annotations

#: a request nonce, echoed in the receipt, in bytes (an attestation nonce: 1..MAX_NONCE)
MAX_NONCE = 64
