"""Hot-path encoders producing exactly the bytes of the reference encoders in ``verifier``:
tensor commitments straight from numpy buffers (headers cached per name, dtype and shape),
and statements / receipts as deterministic CBOR assembled from precomputed pieces. Tests
check byte equality with ``trustdial_verifier._internal.tensors.commit_tensors``, ``Statement.encode`` and
``Receipt.encode`` on generated values."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import cbor2
import numpy as np
from trustdial_verifier.unstable.receipts import FORMAT_VERSION, OPERATIONS, STATEMENT_TYPE
from trustdial_verifier.unstable.tensors import (
    COMMITMENT_KIND_SHA256,
    DTYPE_SIZES,
    MAGIC,
    Tensor,
    TensorError,
    tensor_header,
)

_SMALL_HEADS = {(major, value): bytes([major << 5 | value]) for major in range(8) for value in range(24)}


def _head(major: int, value: int) -> bytes:
    if value < 24:
        return _SMALL_HEADS[major, value]
    if value < 1 << 8:
        return bytes([major << 5 | 24, value])
    if value < 1 << 16:
        return bytes([major << 5 | 25]) + value.to_bytes(2, "big")
    if value < 1 << 32:
        return bytes([major << 5 | 26]) + value.to_bytes(4, "big")
    return bytes([major << 5 | 27]) + value.to_bytes(8, "big")


_SMALL_UINTS = [_SMALL_HEADS[0, value] for value in range(24)]
_BYTES_HEADS = [_head(2, length) for length in range(256)]


def _uint(value: int) -> bytes:
    """``cbor_uint`` with the hot cases first: a millisecond timestamp, a sequence number."""
    if value >= 1 << 32:
        return b"\x1b" + value.to_bytes(8, "big") if value < 1 << 64 else _head(0, value)
    if value >= 1 << 16:
        return b"\x1a" + value.to_bytes(4, "big")
    return _SMALL_UINTS[value] if value < 24 else _head(0, value)


def _bytes_head(length: int) -> bytes:
    return _BYTES_HEADS[length] if length < 256 else _head(2, length)


def cbor_uint(value: int) -> bytes:
    return _head(0, value)


def cbor_bytes(value: bytes) -> bytes:
    return _head(2, len(value)) + value


def cbor_text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _head(3, len(raw)) + raw


def _name_order(item: tuple[str, Any]) -> bytes:
    return item[0].encode("utf-8")


class ArrayCommitter:
    """``commit_tensors`` for numpy arrays or :class:`Tensor` values, without copying data.

    Headers are cached per (name, dtype, shape) layout, so the hot path is two ``update``
    calls per tensor. Arrays that are not little-endian and C-contiguous are converted first.
    """

    def __init__(self) -> None:
        self._layouts: dict[tuple[Any, ...], list[tuple[bytes, bool]]] = {}
        # one-tensor sets whose data is hashed as is (little-endian numeric arrays, Tensors): the
        # whole header, MAGIC and count included; arrays and Tensors never share an entry (bool
        # arrays need their bytes checked, Tensors were checked on construction)
        self._array_headers: dict[tuple[Any, ...], bytes] = {}
        self._tensor_headers: dict[tuple[Any, ...], bytes] = {}

    def _layout(self, key: tuple[Any, ...], items: list[tuple[str, Any]]) -> list[tuple[bytes, bool]]:
        layout = []
        for name, value in items:
            dtype = _dtype(value)
            shape = tuple(int(d) for d in value.shape)
            size = DTYPE_SIZES[dtype] * int(np.prod(shape, dtype=np.int64))
            convert = not isinstance(value, Tensor) and (value.dtype.byteorder == ">" or dtype == "bool")
            layout.append((tensor_header(name, Tensor(dtype, shape, bytes(size))), convert))
        first, convert = layout[0]
        layout[0] = (MAGIC + struct.pack(">I", len(items)) + first, convert)
        if len(self._layouts) > 4096:
            self._layouts.clear()
            self._array_headers.clear()
            self._tensor_headers.clear()
        self._layouts[key] = layout
        if len(items) == 1 and not convert:
            name, value = items[0]
            if type(value) is np.ndarray:
                self._array_headers[name, value.dtype, value.shape] = layout[0][0]
            elif type(value) is Tensor:
                self._tensor_headers[name, value.dtype, value.shape] = layout[0][0]
        return layout

    def commit(self, values: Mapping[str, Any]) -> bytes:
        if len(values) == 1:  # the common case, kept short: one cached header, one data update
            ((name, value),) = values.items()
            if type(value) is np.ndarray:
                header = self._array_headers.get((name, value.dtype, value.shape))
                if header is not None:
                    digest = hashlib.sha256(header)
                    try:
                        digest.update(value)  # type: ignore[arg-type]  # numpy's buffer, untyped as such
                    except (BufferError, ValueError):  # not C-contiguous
                        digest.update(_little_endian(value))
                    return digest.digest()
            elif type(value) is Tensor:
                header = self._tensor_headers.get((name, value.dtype, value.shape))
                if header is not None:
                    digest = hashlib.sha256(header)
                    digest.update(value.data)
                    return digest.digest()
        if not values:
            return hashlib.sha256(MAGIC + struct.pack(">I", 0)).digest()
        items = sorted(values.items(), key=_name_order) if len(values) > 1 else list(values.items())
        key = (
            (items[0][0], _dtype_key(items[0][1]), items[0][1].shape)
            if len(items) == 1
            else tuple((name, _dtype_key(value), value.shape) for name, value in items)
        )
        layout = self._layouts.get(key) or self._layout(key, items)
        digest = hashlib.sha256()
        for (header, convert), (_, value) in zip(layout, items, strict=True):
            digest.update(header)
            if isinstance(value, Tensor):
                digest.update(value.data)
            elif convert:
                digest.update(_little_endian(value))
            else:
                try:
                    digest.update(value)
                except (BufferError, ValueError):  # not C-contiguous
                    digest.update(_little_endian(value))
        return digest.digest()


def _dtype_key(value: Any) -> Any:
    """Cache-key dtype: Tensors (validated on construction) never share layouts with arrays."""
    return ("tensor", value.dtype) if isinstance(value, Tensor) else value.dtype


def _dtype(value: Any) -> str:
    if isinstance(value, Tensor):
        return value.dtype
    name: str = value.dtype.name
    if name not in DTYPE_SIZES:
        raise TensorError("TENSOR_DTYPE", f"expected one of {sorted(DTYPE_SIZES)}, found dtype {name!r}")
    return name


def _little_endian(array: Any) -> Any:
    converted = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    if converted.dtype == np.bool_ and converted.view(np.uint8).max(initial=0) > 1:
        raise TensorError("TENSOR_BOOL", "expected bool bytes to be 0 or 1")
    return converted


_COMMITMENT_PREFIX = b"\xa2" + cbor_text("kind") + cbor_text(COMMITMENT_KIND_SHA256) + cbor_text("digest") + b"\x58\x20"


class StatementEncoder:
    """``Statement.encode()`` for sha256 commitments, from precomputed pieces.

    Deterministic CBOR orders map keys by encoded length, then bytewise: v, op, seq, type,
    input, model, nonce, output, [params], attestation, timestamp_ms.
    """

    def __init__(self, attestation_digest: bytes) -> None:
        self._after_seq = cbor_text("type") + cbor_text(STATEMENT_TYPE) + cbor_text("input") + _COMMITMENT_PREFIX
        self._attestation = cbor_text("attestation") + cbor_bytes(attestation_digest) + cbor_text("timestamp_ms")
        self._ops = {op: cbor_text("v") + cbor_uint(FORMAT_VERSION) + cbor_text("op") + cbor_text(op) + cbor_text("seq")
                     for op in OPERATIONS}  # fmt: skip
        self._model = cbor_text("model") + b"\x58\x20"
        self._nonce = cbor_text("nonce")
        self._output = cbor_text("output") + _COMMITMENT_PREFIX
        self._params = cbor_text("params")
        self._heads = {op: b"\xaa" + head for op, head in self._ops.items()}

    def encode(
        self,
        op: str,
        model: bytes,
        input_digest: bytes,
        output_digest: bytes,
        nonce: bytes,
        timestamp_ms: int,
        seq: int,
        params: Mapping[str, int | str] | None = None,
    ) -> bytes:
        if params:
            return b"".join(
                (b"\xab", self._ops[op], cbor_uint(seq), self._after_seq, input_digest, self._model, model,
                 self._nonce, cbor_bytes(nonce), self._output, output_digest, self._params,
                 cbor2.dumps(dict(params), canonical=True), self._attestation, cbor_uint(timestamp_ms))
            )  # fmt: skip
        # the common case in one join: no params, so the map has 10 keys (0xaa)
        return b"".join(
            (self._heads[op], _uint(seq), self._after_seq, input_digest, self._model, model, self._nonce,
             _bytes_head(len(nonce)), nonce, self._output, output_digest, self._attestation, _uint(timestamp_ms))
        )  # fmt: skip


_RECEIPT_HEAD = b"\xa5" + cbor_text("v") + cbor_uint(FORMAT_VERSION) + cbor_text("path")
_RECEIPT_HEADS = [_RECEIPT_HEAD + _head(4, depth) for depth in range(24)]
_SEAL_KEY = cbor_text("seal")
_INDEX_KEY = cbor_text("index")
_STATEMENT_KEY = cbor_text("statement")
_HASH_HEAD = b"\x58\x20"  # byte string of 32


def encode_receipt(statement: bytes, seal: bytes, index: int, path: Sequence[bytes]) -> bytes:
    """``Receipt(statement, seal, index, path).encode()`` (keys: v, path, seal, index, statement)."""
    hashes = _HASH_HEAD + _HASH_HEAD.join(path) if path else b""
    return b"".join(
        (_RECEIPT_HEAD, _head(4, len(path)), hashes, _SEAL_KEY, cbor_bytes(seal), _INDEX_KEY, cbor_uint(index),
         _STATEMENT_KEY, cbor_bytes(statement))
    )  # fmt: skip


def encode_batch_receipts(statements: Sequence[bytes], seal: bytes, levels: Sequence[Sequence[bytes]]) -> list[bytes]:
    """``encode_receipt`` for every statement of one sealed batch, given the Merkle tree's levels
    (leaves first, root last, as built by ``sealer.tree_levels``): the paths are assembled level
    by level from hashes that already carry their CBOR head, and each receipt is one join."""
    middle = _SEAL_KEY + cbor_bytes(seal) + _INDEX_KEY
    paths: list[list[bytes]] = [[_RECEIPT_HEAD] for _ in statements]
    for depth, level in enumerate(levels[:-1]):
        tagged = [_HASH_HEAD + node for node in level]
        size = len(tagged)
        for leaf, path in enumerate(paths):
            sibling = (leaf >> depth) ^ 1
            if sibling < size:
                path.append(tagged[sibling])
    receipts = []
    for index, (statement, path) in enumerate(zip(statements, paths, strict=True)):
        depth = len(path) - 1
        path[0] = _RECEIPT_HEADS[depth] if depth < 24 else _RECEIPT_HEAD + _head(4, depth)
        path += (middle, _uint(index), _STATEMENT_KEY,
                 _bytes_head(len(statement)), statement)  # fmt: skip
        receipts.append(b"".join(path))
    return receipts


__all__ = ["ArrayCommitter", "StatementEncoder", "cbor_bytes", "cbor_uint", "encode_batch_receipts", "encode_receipt"]
