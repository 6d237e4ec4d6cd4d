"""Named tensors, their canonical encoding (docs/receipts.md §2) and SHA-256 commitment.

Unstable: see :mod:`trustdial_verifier.unstable`."""

from trustdial_verifier._internal.tensors import (
    COMMITMENT_KIND_SHA256,
    DTYPE_SIZES,
    MAGIC,
    MAX_NAME_BYTES,
    Tensor,
    TensorError,
    commit_tensors,
    tensor_header,
)

__all__ = [
    "COMMITMENT_KIND_SHA256",
    "DTYPE_SIZES",
    "MAGIC",
    "MAX_NAME_BYTES",
    "Tensor",
    "TensorError",
    "commit_tensors",
    "tensor_header",
]
