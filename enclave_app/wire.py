"""Tensors on the wire: CBOR maps in frames, JSON objects (base64 data) over HTTP."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from trustdial_verifier.errors import VerificationError
from trustdial_verifier.unstable.tensors import Tensor

from enclave_app.errors import RequestError

MAX_TENSORS = 64


def _tensor(name: str, value: Any, data: bytes) -> Tensor:
    shape = value.get("shape")
    if not isinstance(shape, list | tuple) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise RequestError("BAD_SHAPE", f"tensor {name!r}: shape must be a list of integers")
    dtype = value.get("dtype")
    if not isinstance(dtype, str):
        raise RequestError("BAD_DTYPE", f"tensor {name!r}: dtype must be a string")
    try:
        return Tensor(dtype, tuple(shape), data)
    except VerificationError as err:
        code = {"TENSOR_DTYPE": "BAD_DTYPE", "TENSOR_SHAPE": "BAD_SHAPE"}.get(err.code, "BAD_TENSOR")
        raise RequestError(code, f"tensor {name!r}: {err.reason}") from err


def _named(values: Any, decode: Any) -> dict[str, Tensor]:
    if not isinstance(values, dict) or not values or len(values) > MAX_TENSORS:
        raise RequestError("BAD_TENSORS", f"expected a map of 1..{MAX_TENSORS} named tensors")
    out = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name or not isinstance(value, dict):
            raise RequestError("BAD_TENSORS", "expected each tensor as name -> {dtype, shape, data}")
        out[name] = _tensor(name, value, decode(name, value.get("data")))
    return out


def tensors_from_cbor(values: Any) -> dict[str, Tensor]:
    def data(name: str, raw: Any) -> bytes:
        if not isinstance(raw, bytes):
            raise RequestError("BAD_TENSORS", f"tensor {name!r}: data must be a byte string")
        return raw

    return _named(values, data)


def tensors_from_json(values: Any) -> dict[str, Tensor]:
    def data(name: str, raw: Any) -> bytes:
        if not isinstance(raw, str):
            raise RequestError("BAD_TENSORS", f"tensor {name!r}: data must be base64 text")
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as err:
            raise RequestError("BAD_TENSORS", f"tensor {name!r}: data is not valid base64") from err

    return _named(values, data)


def tensors_to_cbor(tensors: Mapping[str, Tensor]) -> dict[str, Any]:
    return {n: {"dtype": t.dtype, "shape": list(t.shape), "data": t.data} for n, t in tensors.items()}


def tensors_to_json(tensors: Mapping[str, Tensor]) -> dict[str, Any]:
    return {
        n: {"dtype": t.dtype, "shape": list(t.shape), "data": base64.b64encode(t.data).decode("ascii")}
        for n, t in tensors.items()
    }
