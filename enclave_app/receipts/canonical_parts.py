"""The canonical tensor encoding of a tensor set (``trustdial_verifier._internal.tensors`` §2: MAGIC, count, then
header and little-endian data per tensor, names in sorted order) as a list of buffers to copy,
with the headers cached per layout, so that nothing is re-encoded per response."""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from trustdial_verifier.unstable.tensors import DTYPE_SIZES, MAGIC, MAX_NAME_BYTES, Tensor, TensorError, tensor_header


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
        layout = []
        for name, value in items:
            dtype = value.dtype if isinstance(value, Tensor) else value.dtype.name
            layout.append((name, dtype, tuple(int(d) for d in value.shape)))
        headers = canonical_headers(layout)
        if len(self._layouts) > 4096:
            self._layouts.clear()
            self._single.clear()
        self._layouts[key] = headers
        if len(items) == 1 and type(items[0][1]) is np.ndarray:
            name, value = items[0]
            if value.dtype.byteorder != ">" and value.dtype != np.bool_:
                self._single[name, value.dtype, value.shape] = (headers[0], len(headers[0]) + value.nbytes)
        return headers


def canonical_headers(layout: Sequence[tuple[str, str, tuple[int, ...]]]) -> list[bytes]:
    """For (name, dtype name, shape) in canonical order: the bytes before each tensor's data, the
    first carrying MAGIC and the count (for no tensors, just those). Names and dtypes are checked."""
    headers = []
    for name, dtype, shape in layout:
        if not isinstance(name, str) or not name or len(name.encode("utf-8")) > MAX_NAME_BYTES:
            raise TensorError("TENSOR_NAME", f"expected a non-empty name of at most {MAX_NAME_BYTES} bytes")
        if dtype not in DTYPE_SIZES:
            raise TensorError("TENSOR_DTYPE", f"expected one of {sorted(DTYPE_SIZES)}, found dtype {dtype!r}")
        size = DTYPE_SIZES[dtype] * int(np.prod(shape, dtype=np.int64))
        headers.append(tensor_header(name, Tensor(dtype, shape, bytes(size))))
    prefix = MAGIC + struct.pack(">I", len(layout))
    return [prefix + headers[0], *headers[1:]] if headers else [prefix]


def _dtype_key(value: Any) -> Any:
    return ("tensor", value.dtype) if isinstance(value, Tensor) else value.dtype


def _canonical_array(array: Any) -> Any:
    converted = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    if converted.dtype == np.bool_ and converted.view(np.uint8).max(initial=0) > 1:
        raise TensorError("TENSOR_BOOL", "expected bool bytes to be 0 or 1")
    return converted


__all__ = ["CanonicalParts", "canonical_headers"]
