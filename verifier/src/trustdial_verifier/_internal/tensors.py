"""Named tensors and their canonical encoding and commitment (spec: docs/receipts.md §2).

A receipt never carries tensors, only commitments to them. Both sides therefore have to
agree byte for byte on how a set of named tensors is serialised before hashing:

    encoding = MAGIC
             || u32 count
             || for each tensor, names sorted by their UTF-8 bytes:
                  u32 len(name) || name (UTF-8)
                  u8 len(dtype) || dtype (ASCII, e.g. "float32")
                  u32 ndim || u64 dim[0] ... u64 dim[ndim-1]
                  u64 len(data) || data (C order, little-endian)

All integers are big-endian. The commitment is SHA-256 over the encoding. Nothing here
needs numpy; :meth:`Tensor.from_array` and :meth:`Tensor.to_array` import it lazily.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trustdial_verifier.errors import VerificationError, describe_value

MAGIC = b"trustdial/tensors/v1\x00"
COMMITMENT_KIND_SHA256 = "sha256-tensors-v1"

#: dtype name -> bytes per element. Names follow numpy's spelling.
DTYPE_SIZES: Mapping[str, int] = {
    "bool": 1,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "float16": 2,
    "int32": 4,
    "uint32": 4,
    "float32": 4,
    "int64": 8,
    "uint64": 8,
    "float64": 8,
}

MAX_NDIM = 32
MAX_NAME_BYTES = 256
#: Dimensions are encoded as u64.
MAX_DIM = 1 << 64


class TensorError(VerificationError):
    """A tensor or tensor set is malformed (codes start with ``TENSOR_``)."""


@dataclass(frozen=True)
class Tensor:
    """One tensor: numpy-style dtype name, shape, and raw little-endian C-order bytes."""

    dtype: str
    shape: tuple[int, ...]
    data: bytes

    def __post_init__(self) -> None:
        size = DTYPE_SIZES.get(self.dtype)
        if size is None:
            raise TensorError(
                "TENSOR_DTYPE", f"expected one of {sorted(DTYPE_SIZES)}, found dtype {describe_value(self.dtype)}"
            )
        if len(self.shape) > MAX_NDIM:
            raise TensorError("TENSOR_SHAPE", f"expected at most {MAX_NDIM} dimensions, found {len(self.shape)}")
        for dim in self.shape:
            if not isinstance(dim, int) or isinstance(dim, bool) or not 0 <= dim < MAX_DIM:
                raise TensorError(
                    "TENSOR_SHAPE", f"expected integer dimensions in 0..2**64-1 (u64), found {describe_value(dim)}"
                )
        expected = math.prod(self.shape) * size
        if len(self.data) != expected:
            raise TensorError(
                "TENSOR_SIZE",
                f"shape {list(self.shape)} of {self.dtype} needs {expected} bytes, found {len(self.data)}",
            )
        if self.dtype == "bool" and self.data.strip(b"\x00\x01"):
            raise TensorError("TENSOR_BOOL", "expected bool bytes to be 0 or 1")

    @classmethod
    def from_array(cls, array: Any) -> Tensor:
        """Build from a numpy array (converted to little-endian, C order)."""
        import numpy as np

        arr = np.asarray(array)
        name = arr.dtype.name
        if name not in DTYPE_SIZES:
            raise TensorError("TENSOR_DTYPE", f"expected one of {sorted(DTYPE_SIZES)}, found dtype {name!r}")
        little = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
        return cls(name, tuple(int(d) for d in arr.shape), little.tobytes())

    def to_array(self) -> Any:
        """The tensor as a numpy array (requires numpy)."""
        import numpy as np

        return np.frombuffer(self.data, dtype=np.dtype(self.dtype).newbyteorder("<")).reshape(self.shape)


def _name_key(name: str) -> bytes:
    return name.encode("utf-8")


def _checked_name_key(name: object) -> bytes:
    if not isinstance(name, str) or not name:
        raise TensorError("TENSOR_NAME", f"expected a non-empty string name, found {describe_value(name)}")
    try:
        key = _name_key(name)
    except UnicodeEncodeError as err:  # a lone surrogate: no UTF-8 encoding exists
        raise TensorError(
            "TENSOR_NAME", f"expected a name of Unicode text, found a lone surrogate at character {err.start}"
        ) from None
    if len(key) > MAX_NAME_BYTES:
        raise TensorError("TENSOR_NAME", f"expected a name of at most {MAX_NAME_BYTES} bytes, found {len(key)}")
    return key


def _check_names(names: Iterable[str]) -> list[str]:
    keyed = sorted((_checked_name_key(name), name) for name in names)
    return [name for _, name in keyed]


def tensor_header(name: str, tensor: Tensor) -> bytes:
    """Everything of one tensor's encoding except its data bytes."""
    raw_name = _name_key(name)
    raw_dtype = tensor.dtype.encode("ascii")
    return b"".join(
        (
            struct.pack(">I", len(raw_name)),
            raw_name,
            struct.pack(">B", len(raw_dtype)),
            raw_dtype,
            struct.pack(f">I{len(tensor.shape)}Q", len(tensor.shape), *tensor.shape),
            struct.pack(">Q", len(tensor.data)),
        )
    )


def encode_tensors(tensors: Mapping[str, Tensor]) -> bytes:
    """The canonical encoding of a set of named tensors (see module docstring)."""
    parts = [MAGIC, struct.pack(">I", len(tensors))]
    for name in _check_names(tensors):
        parts.append(tensor_header(name, tensors[name]))
        parts.append(tensors[name].data)
    return b"".join(parts)


def commit_tensors(tensors: Mapping[str, Tensor]) -> bytes:
    """SHA-256 over :func:`encode_tensors`, computed incrementally (no copy of the data)."""
    digest = hashlib.sha256(MAGIC)
    digest.update(struct.pack(">I", len(tensors)))
    for name in _check_names(tensors):
        digest.update(tensor_header(name, tensors[name]))
        digest.update(tensors[name].data)
    return digest.digest()
