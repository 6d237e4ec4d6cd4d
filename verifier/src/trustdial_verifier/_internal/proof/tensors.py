"""Tensor files given to ``trustdial-verify proof --input/--output``.

Two JSON shapes are accepted:

* canonical, exact bytes (what a TEE receipt commits to with SHA-256)::

      {"dtype": "float32", "shape": [1, 16], "data_b64": "<base64 of little-endian values>"}

  (``dtype`` is ``float32`` or ``float64``), optionally wrapped as ``{"tensors": [ ... ]}`` with one entry;
* ezkl's data format ``{"input_data": [[v0, v1, ...]]}`` (or ``output_data``), JSON numbers.

Only one tensor per side is supported: trustdial segments have a single input and a single output.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from trustdial_verifier._internal import strict_json
from trustdial_verifier.errors import InputError, describe_value

DTYPE_FORMATS: Final[dict[str, str]] = {"float32": "f", "float64": "d"}
MAX_TENSOR_FILE_BYTES: Final = 64 << 20


@dataclass(frozen=True)
class Tensor:
    """Values of one tensor, and the exact bytes they were decoded from when known."""

    dtype: str
    shape: tuple[int, ...]
    values: tuple[float, ...]
    raw: bytes | None = None

    @property
    def sha256(self) -> str | None:
        """SHA-256 of the exact little-endian bytes, when the tensor came in canonical form."""
        return hashlib.sha256(self.raw).hexdigest() if self.raw is not None else None


def tensor_from_bytes(dtype: str, shape: tuple[int, ...], raw: bytes) -> Tensor:
    fmt = DTYPE_FORMATS.get(dtype)
    if fmt is None:
        raise InputError("TENSOR_MALFORMED", f"expected dtype float32 or float64, got {describe_value(dtype)}")
    count = math.prod(shape)
    width = struct.calcsize(fmt)
    if len(raw) != count * width:
        raise InputError(
            "TENSOR_MALFORMED", f"shape {list(shape)} of {dtype} needs {count * width} bytes, got {len(raw)}"
        )
    values = struct.unpack(f"<{count}{fmt}", raw)
    if not all(math.isfinite(v) for v in values):
        raise InputError("TENSOR_MALFORMED", "tensor holds NaN or infinity; only finite values can be quantized")
    return Tensor(dtype=dtype, shape=shape, values=tuple(values), raw=raw)


def canonical_tensor_json(tensor_values: list[float], shape: list[int], dtype: str = "float32") -> dict[str, Any]:
    """The canonical JSON object for ``values`` (used by the prover and by tests to write tensor files)."""
    fmt = DTYPE_FORMATS[dtype]
    raw = struct.pack(f"<{len(tensor_values)}{fmt}", *tensor_values)
    return {"dtype": dtype, "shape": shape, "data_b64": base64.b64encode(raw).decode("ascii")}


def parse_tensor_json(doc: Any, *, side: str) -> Tensor:
    """Parse one tensor from a decoded JSON document (either accepted shape)."""
    if isinstance(doc, dict) and "tensors" in doc:
        entries = doc["tensors"]
        if not isinstance(entries, list) or len(entries) != 1:
            raise InputError(
                "TENSOR_MALFORMED", f"expected exactly one tensor under 'tensors', got {describe_value(entries)}"
            )
        doc = entries[0]
    if isinstance(doc, dict) and "data_b64" in doc:
        return _parse_canonical(doc)
    key = f"{side}_data"
    if isinstance(doc, dict) and key in doc:
        return _parse_ezkl_data(doc[key], key)
    raise InputError(
        "TENSOR_MALFORMED", f"expected a canonical tensor object (dtype, shape, data_b64) or {{'{key}': [[...]]}}"
    )


def load_tensor_file(path: Path, *, side: str) -> Tensor:
    with path.open("rb") as handle:
        data = handle.read(MAX_TENSOR_FILE_BYTES + 1)
    try:
        doc = strict_json.loads(data, max_bytes=MAX_TENSOR_FILE_BYTES)
    except strict_json.JsonError as err:
        raise InputError("TENSOR_MALFORMED", f"{path} is not strict JSON: {err.reason} ({err.code})") from None
    return parse_tensor_json(doc, side=side)


def _parse_canonical(doc: dict[str, Any]) -> Tensor:
    dtype = doc.get("dtype")
    shape = doc.get("shape")
    if not isinstance(dtype, str):
        raise InputError("TENSOR_MALFORMED", f"expected a string dtype, got {describe_value(dtype)}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise InputError(
            "TENSOR_MALFORMED", f"expected shape as a list of non-negative integers, got {describe_value(shape)}"
        )
    try:
        raw = base64.b64decode(str(doc["data_b64"]), validate=True)
    except (binascii.Error, ValueError) as err:
        raise InputError("TENSOR_MALFORMED", f"data_b64 is not valid base64: {err}") from err
    return tensor_from_bytes(dtype, tuple(shape), raw)


def _parse_ezkl_data(data: Any, key: str) -> Tensor:
    if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], list):
        raise InputError("TENSOR_MALFORMED", f"expected '{key}' to hold exactly one flat list of numbers")
    flat = data[0]
    try:
        for v in flat:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise InputError("TENSOR_MALFORMED", f"expected finite numbers in '{key}', found {describe_value(v)}")
        values = tuple(float(v) for v in flat)
    except OverflowError as err:  # an integer beyond float64 range
        raise InputError("TENSOR_MALFORMED", f"expected numbers within float64 range in '{key}': {err}") from err
    return Tensor(dtype="float64", shape=(len(flat),), values=values, raw=None)
