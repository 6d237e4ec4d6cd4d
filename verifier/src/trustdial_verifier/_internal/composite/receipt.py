"""The composite receipt document (format ``trustdial.composite-receipt/1``, spec in
docs/composite-receipts.md): parsed strictly into typed objects, nothing verified yet.

Verification happens in :mod:`trustdial_verifier._internal.composite.links` on top of the per-step evidence
checks; this module only guarantees shape (types, sizes, known keys), so that later checks
never see a malformed value.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trustdial_verifier._internal import strict_json
from trustdial_verifier._internal.composite.errors import CompositeError
from trustdial_verifier._internal.composite.policy import MODE_STRENGTH, VISIBILITIES
from trustdial_verifier.errors import describe_value as _describe

RECEIPT_FORMAT = "trustdial.composite-receipt/1"
MAX_RECEIPT_BYTES = 64 << 20
MAX_STEPS = 64
DTYPES = ("float32", "float64", "int64", "int32", "uint8", "bool")
_HEX = re.compile(r"[0-9a-f]*")
_TOP_KEYS = {"format", "pipeline", "policy_sha256", "policy", "manifest_sha256", "request", "tensors", "steps"}
_STEP_KEYS = {"index", "segment", "mode", "step_nonce", "inputs", "outputs", "evidence", "cost"}


@dataclass(frozen=True)
class TensorData:
    dtype: str
    shape: tuple[int, ...]
    data: bytes  # little-endian element bytes, C order


@dataclass(frozen=True)
class Commitment:
    """What a tensor is committed to: SHA-256 of its canonical encoding and/or the ezkl Poseidon
    hash of its quantized felts (hex, as ezkl prints it)."""

    sha256: str | None = None
    poseidon: str | None = None


@dataclass(frozen=True)
class BoundaryTensor:
    name: str
    visibility: str
    commitment: Commitment
    tensor: TensorData | None  # present exactly when visibility is public


@dataclass(frozen=True)
class Step:
    index: int
    segment: str
    mode: str
    step_nonce: str
    inputs: Mapping[str, Commitment]
    outputs: Mapping[str, Commitment]
    evidence: Mapping[str, Mapping[str, Any]]  # kind ("tee" | "zk") -> kind-specific evidence object
    cost: Mapping[str, Any]


@dataclass(frozen=True)
class CompositeReceipt:
    pipeline: str
    policy_sha256: str
    policy: Mapping[str, Any]
    manifest_sha256: str
    request_nonce: str
    tensors: Mapping[str, BoundaryTensor]
    steps: tuple[Step, ...]
    raw: Mapping[str, Any]


def parse_receipt(data: bytes) -> CompositeReceipt:
    if len(data) > MAX_RECEIPT_BYTES:
        raise CompositeError("COMPOSITE_MALFORMED", f"expected at most {MAX_RECEIPT_BYTES} bytes, found {len(data)}")
    try:
        document = strict_json.loads(data, max_bytes=MAX_RECEIPT_BYTES)
    except strict_json.JsonError as err:
        raise CompositeError(
            "COMPOSITE_MALFORMED", f"expected a strict UTF-8 JSON object: {err.reason} ({err.code})"
        ) from None
    return receipt_from_mapping(document)


def is_composite(document: Any) -> bool:
    """True when a decoded JSON document claims to be a composite receipt (format check only)."""
    return isinstance(document, Mapping) and document.get("format") == RECEIPT_FORMAT


def receipt_from_mapping(document: Any) -> CompositeReceipt:
    if not isinstance(document, Mapping):
        raise CompositeError("COMPOSITE_MALFORMED", f"expected a JSON object, found {type(document).__name__}")
    if document.get("format") != RECEIPT_FORMAT:
        raise CompositeError(
            "COMPOSITE_FORMAT_UNKNOWN",
            f"expected format {RECEIPT_FORMAT!r}, found {_describe(document.get('format'))}",
        )
    _exact_keys(document, _TOP_KEYS, "receipt")
    request = document["request"]
    _exact_keys(request, {"nonce"}, "request")
    raw_steps = document["steps"]
    if not isinstance(raw_steps, list) or not 0 < len(raw_steps) <= MAX_STEPS:
        raise CompositeError("COMPOSITE_MALFORMED", f"expected 1..{MAX_STEPS} steps, found {_describe(raw_steps)}")
    tensors = document["tensors"]
    if not isinstance(tensors, Mapping):
        raise CompositeError("COMPOSITE_MALFORMED", "expected 'tensors' to be an object of name -> boundary tensor")
    policy = document["policy"]
    if not isinstance(policy, Mapping):
        raise CompositeError("COMPOSITE_MALFORMED", "expected 'policy' to be the canonical policy object")
    return CompositeReceipt(
        pipeline=_string(document["pipeline"], "pipeline"),
        policy_sha256=_hex(document["policy_sha256"], "policy_sha256", 32),
        policy=policy,
        manifest_sha256=_hex(document["manifest_sha256"], "manifest_sha256", 32),
        request_nonce=_hex(request["nonce"], "request.nonce", 32),
        tensors={_string(name, "tensors"): _boundary(name, value) for name, value in tensors.items()},
        steps=tuple(_step(raw, position) for position, raw in enumerate(raw_steps)),
        raw=document,
    )


def _boundary(name: str, raw: Any) -> BoundaryTensor:
    where = f"tensors.{name}"
    _exact_keys(raw, {"visibility", "commitment", "tensor"}, where)
    visibility = raw["visibility"]
    if not isinstance(visibility, str) or visibility not in VISIBILITIES:
        raise CompositeError(
            "COMPOSITE_MALFORMED", f"expected {where}.visibility in {VISIBILITIES}, found {_describe(visibility)}"
        )
    tensor = None if raw["tensor"] is None else _tensor(raw["tensor"], f"{where}.tensor")
    return BoundaryTensor(
        name=name, visibility=visibility, commitment=_commitment(raw["commitment"], where), tensor=tensor
    )


def _step(raw: Any, position: int) -> Step:
    where = f"steps[{position}]"
    _exact_keys(raw, _STEP_KEYS, where)
    index = raw["index"]
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < MAX_STEPS:
        raise CompositeError(
            "COMPOSITE_MALFORMED", f"expected {where}.index to be a small integer, found {_describe(index)}"
        )
    mode = raw["mode"]
    if not isinstance(mode, str) or mode not in MODE_STRENGTH:
        raise CompositeError(
            "COMPOSITE_MALFORMED", f"expected {where}.mode in {sorted(MODE_STRENGTH)}, found {_describe(mode)}"
        )
    evidence = raw["evidence"]
    if not isinstance(evidence, Mapping) or not evidence or set(evidence) - {"tee", "zk"}:
        raise CompositeError(
            "COMPOSITE_MALFORMED", f"expected {where}.evidence to hold 'tee' and/or 'zk', found {_describe(evidence)}"
        )
    for kind, value in evidence.items():
        if not isinstance(value, Mapping):
            raise CompositeError("COMPOSITE_MALFORMED", f"expected {where}.evidence.{kind} to be an object")
    cost = _cost(raw["cost"], where)
    return Step(
        index=index,
        segment=_string(raw["segment"], f"{where}.segment"),
        mode=mode,
        step_nonce=_hex(raw["step_nonce"], f"{where}.step_nonce", 32),
        inputs=_commitments(raw["inputs"], f"{where}.inputs"),
        outputs=_commitments(raw["outputs"], f"{where}.outputs"),
        evidence=evidence,
        cost=cost,
    )


#: The prover's own statement of what a step cost, shown as "stated cost": the only field nothing can verify,
#: so its form is fixed: {} or {"seconds": a finite number in 0..MAX_STATED_SECONDS}.
MAX_STATED_SECONDS = 10**7


def _cost(raw: Any, where: str) -> dict[str, float]:
    if not isinstance(raw, Mapping) or set(raw) - {"seconds"}:
        raise CompositeError(
            "COMPOSITE_MALFORMED", f'expected {where}.cost to be {{}} or {{"seconds": N}}, found {_describe(raw)}'
        )
    if "seconds" not in raw:
        return {}
    seconds = raw["seconds"]
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 <= seconds <= MAX_STATED_SECONDS  # before float(): an int may be far beyond float range
        or not math.isfinite(float(seconds))
    ):
        raise CompositeError(
            "COMPOSITE_MALFORMED",
            f"expected {where}.cost.seconds to be a number in 0..{MAX_STATED_SECONDS}, found {_describe(seconds)}",
        )
    return {"seconds": float(seconds)}


def _commitments(raw: Any, where: str) -> dict[str, Commitment]:
    if not isinstance(raw, Mapping) or not raw:
        raise CompositeError("COMPOSITE_MALFORMED", f"expected {where} to map tensor names to commitments")
    return {_string(name, where): _commitment(value, f"{where}.{name}") for name, value in raw.items()}


def _commitment(raw: Any, where: str) -> Commitment:
    _exact_keys(raw, {"sha256", "poseidon"}, where, optional={"sha256", "poseidon"})
    sha = raw.get("sha256")
    poseidon = raw.get("poseidon")
    if sha is None and poseidon is None:
        raise CompositeError("COMPOSITE_MALFORMED", f"expected {where} to hold a sha256 or poseidon commitment")
    return Commitment(
        sha256=None if sha is None else _hex(sha, f"{where}.sha256", 32),
        poseidon=None if poseidon is None else _hex(poseidon, f"{where}.poseidon", 32),
    )


def _tensor(raw: Any, where: str) -> TensorData:
    _exact_keys(raw, {"dtype", "shape", "data"}, where)
    dtype = raw["dtype"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise CompositeError("COMPOSITE_MALFORMED", f"expected {where}.dtype in {DTYPES}, found {_describe(dtype)}")
    shape = raw["shape"]
    if (
        not isinstance(shape, list)
        or len(shape) > 8
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < (1 << 31) for d in shape)
    ):
        raise CompositeError("COMPOSITE_MALFORMED", f"expected {where}.shape to be a list of dimensions")
    try:
        data = base64.b64decode(_string(raw["data"], f"{where}.data"), validate=True)
    except ValueError as err:  # binascii.Error, or non-ASCII text (a plain ValueError)
        raise CompositeError("COMPOSITE_MALFORMED", f"expected {where}.data to be base64: {err}") from err
    count = 1
    for dim in shape:
        count *= dim
    width = {"float32": 4, "float64": 8, "int64": 8, "int32": 4, "uint8": 1, "bool": 1}[dtype]
    if len(data) != count * width:
        raise CompositeError(
            "COMPOSITE_MALFORMED",
            f"expected {count * width} data bytes for {dtype}{shape} at {where}, found {len(data)}",
        )
    return TensorData(dtype=dtype, shape=tuple(shape), data=data)


def _exact_keys(raw: Any, allowed: set[str], where: str, optional: set[str] | None = None) -> None:
    if not isinstance(raw, Mapping):
        raise CompositeError("COMPOSITE_MALFORMED", f"expected an object at {where}, found {_describe(raw)}")
    unknown = [_describe(k, 40) for k in sorted(set(raw) - allowed)[:8]]
    missing = sorted(allowed - (optional or set()) - set(raw))
    if unknown or missing:
        raise CompositeError(
            "COMPOSITE_MALFORMED",
            f"at {where}: unknown keys {', '.join(unknown) or 'none'}, missing keys {missing or 'none'}",
        )


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > (MAX_RECEIPT_BYTES):
        raise CompositeError("COMPOSITE_MALFORMED", f"expected a non-empty string at {where}, found {_describe(value)}")
    return value


def _hex(value: Any, where: str, length: int) -> str:
    if not isinstance(value, str) or len(value) != 2 * length or not _HEX.fullmatch(value):
        raise CompositeError(
            "COMPOSITE_MALFORMED", f"expected {length} bytes of lowercase hex at {where}, found {_describe(value)}"
        )
    return value
