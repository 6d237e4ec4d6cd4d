"""SHA-256 commitment to a named tensor, as used at composite-receipt boundaries.

Encoding (big-endian lengths), for a set of named tensors in sorted name order::

    b"trustdial.tensors/1\\x00" ||
    for each name: u32 len(name) || name (UTF-8) || u8 len(dtype) || dtype (ASCII)
                   || u8 ndim || ndim x u64 dim || u64 len(data) || data (little-endian, C order)

A boundary commitment is the commitment of the one-tensor set ``{name: tensor}``.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping

from verifier.composite.receipt import TensorData

DOMAIN = b"trustdial.tensors/1\x00"


def tensors_sha256(tensors: Mapping[str, TensorData]) -> str:
    digest = hashlib.sha256(DOMAIN)
    for name in sorted(tensors):
        tensor = tensors[name]
        encoded_name = name.encode("utf-8")
        dtype = tensor.dtype.encode("ascii")
        digest.update(struct.pack(">I", len(encoded_name)) + encoded_name)
        digest.update(struct.pack(">B", len(dtype)) + dtype)
        digest.update(struct.pack(">B", len(tensor.shape)) + b"".join(struct.pack(">Q", d) for d in tensor.shape))
        digest.update(struct.pack(">Q", len(tensor.data)) + tensor.data)
    return digest.hexdigest()


def tensor_sha256(name: str, tensor: TensorData) -> str:
    return tensors_sha256({name: tensor})
