"""SHA-256 commitment to a boundary tensor: the TEE receipts' canonical tensor-set commitment
(``trustdial_verifier._internal.tensors``, kind ``sha256-tensors-v1``, docs/receipts.md §2) of the one-tensor set
``{name: tensor}``, in lowercase hex. One encoding for both kinds of evidence, so a TEE step's
signed output and the public values a ZK step proved are compared byte for byte."""

from __future__ import annotations

from trustdial_verifier._internal.composite.errors import CompositeError
from trustdial_verifier._internal.composite.receipt import TensorData
from trustdial_verifier._internal.tensors import Tensor, TensorError, commit_tensors


def tensor_sha256(name: str, tensor: TensorData) -> str:
    try:
        return commit_tensors({name: Tensor(tensor.dtype, tensor.shape, tensor.data)}).hex()
    except TensorError as err:
        raise CompositeError("COMPOSITE_MALFORMED", f"tensor {name!r}: {err.reason}") from err
