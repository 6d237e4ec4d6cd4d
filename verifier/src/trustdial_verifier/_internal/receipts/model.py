"""Receipt data model and its strict CBOR decoding (docs/receipts.md §3-§4).

``Receipt`` is what travels with a response: the encoded statement, the seal (a COSE_Sign1
over the batch root) and the statement's inclusion path in that batch. Decoding keeps the
statement and batch-root bytes exactly as received: hashes are always over received bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cbor2

from trustdial_verifier._internal import strict_cbor
from trustdial_verifier._internal.kinds import ReceiptOperation
from trustdial_verifier._internal.receipts.errors import ReceiptError
from trustdial_verifier.errors import describe_value

FORMAT_VERSION = 1
STATEMENT_TYPE = "trustdial/tee-step"
BATCH_ROOT_TYPE = "trustdial/batch-root"
#: "llm-completion" and "llm-chunk": language-model completions and their stream chunks (docs/llm-receipts.md)
OPERATIONS = frozenset(op.value for op in ReceiptOperation)
MAX_RECEIPT_BYTES = 64 * 1024
MAX_NONCE_BYTES = 512
DIGEST_SIZE = 32


@dataclass(frozen=True)
class Commitment:
    """A commitment to a set of named tensors; ``kind`` names the scheme (§2)."""

    kind: str
    digest: bytes

    def to_cbor_value(self) -> dict[str, Any]:
        return {"kind": self.kind, "digest": self.digest}


@dataclass(frozen=True)
class Statement:
    """What the enclave asserts about one response (one step of a computation)."""

    op: str
    model: bytes
    input: Commitment
    output: Commitment
    nonce: bytes
    timestamp_ms: int
    seq: int
    attestation: bytes
    params: Mapping[str, int | str] = field(default_factory=dict)

    def to_cbor_value(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "type": STATEMENT_TYPE,
            "op": self.op,
            "model": self.model,
            "input": self.input.to_cbor_value(),
            "output": self.output.to_cbor_value(),
            "nonce": self.nonce,
            "timestamp_ms": self.timestamp_ms,
            "seq": self.seq,
            "attestation": self.attestation,
        }
        if self.params:
            value["params"] = dict(self.params)
        return value

    def encode(self) -> bytes:
        """Deterministic CBOR (RFC 8949 §4.2.1 core rules: definite lengths, sorted keys)."""
        return cbor2.dumps(self.to_cbor_value(), canonical=True)


@dataclass(frozen=True)
class BatchRoot:
    """The payload of a seal: the Merkle root of a micro-batch of statements."""

    root: bytes
    size: int
    attestation: bytes

    def encode(self) -> bytes:
        return cbor2.dumps(
            {
                "v": FORMAT_VERSION,
                "type": BATCH_ROOT_TYPE,
                "root": self.root,
                "size": self.size,
                "attestation": self.attestation,
            },
            canonical=True,
        )


@dataclass(frozen=True)
class Receipt:
    """A receipt as carried with a response."""

    statement: bytes
    seal: bytes
    index: int
    path: tuple[bytes, ...]

    def encode(self) -> bytes:
        return cbor2.dumps(
            {
                "v": FORMAT_VERSION,
                "statement": self.statement,
                "seal": self.seal,
                "index": self.index,
                "path": list(self.path),
            },
            canonical=True,
        )


def _loads(raw: bytes, what: str) -> Any:
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise ReceiptError("RECEIPT_MALFORMED", f"expected {what} as bytes, found {type(raw).__name__}")
    if len(raw) > MAX_RECEIPT_BYTES:
        raise ReceiptError(
            "RECEIPT_MALFORMED", f"expected {what} of at most {MAX_RECEIPT_BYTES} bytes, found {len(raw)}"
        )
    try:
        return strict_cbor.decode(raw, max_bytes=MAX_RECEIPT_BYTES)
    except strict_cbor.CborError as err:
        raise ReceiptError(
            "RECEIPT_MALFORMED", f"{what} is not CBOR this verifier accepts: {err.reason} ({err.code})"
        ) from None


def _map(value: Any, what: str, keys: set[str], optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ReceiptError("RECEIPT_MALFORMED", f"expected {what} to be a map, found {type(value).__name__}")
    found = set(value)
    if not keys <= found or not found <= keys | optional:
        missing = sorted(keys - found)
        unknown = len(found - keys - optional)
        raise ReceiptError(
            "RECEIPT_MALFORMED",
            f"expected {what} keys {sorted(keys)} (optional {sorted(optional)}), found {len(found)} keys: "
            f"missing {missing or 'none'}, {unknown} unknown",
        )
    return value


def _bytes(value: Any, what: str, size: int | None = None, max_size: int | None = None) -> bytes:
    if not isinstance(value, bytes):
        raise ReceiptError("RECEIPT_MALFORMED", f"expected {what} to be a byte string, found {type(value).__name__}")
    if size is not None and len(value) != size:
        raise ReceiptError("RECEIPT_MALFORMED", f"expected {what} of {size} bytes, found {len(value)}")
    if max_size is not None and len(value) > max_size:
        raise ReceiptError("RECEIPT_MALFORMED", f"expected {what} of at most {max_size} bytes, found {len(value)}")
    return value


def _uint(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
        raise ReceiptError(
            "RECEIPT_MALFORMED", f"expected {what} to be an unsigned 64-bit integer, found {describe_value(value)}"
        )
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ReceiptError("RECEIPT_MALFORMED", f"expected {what} to be text, found {type(value).__name__}")
    return value


def _version(value: dict[str, Any], what: str, type_name: str | None) -> None:
    if value.get("v") != FORMAT_VERSION:
        raise ReceiptError(
            "RECEIPT_VERSION", f"expected {what} version {FORMAT_VERSION}, found {describe_value(value.get('v'))}"
        )
    if type_name is not None and value.get("type") != type_name:
        raise ReceiptError(
            "RECEIPT_MALFORMED", f"expected {what} type {type_name!r}, found {describe_value(value.get('type'))}"
        )


def decode_receipt(raw: bytes) -> Receipt:
    value = _map(_loads(raw, "receipt"), "receipt", {"v", "statement", "seal", "index", "path"})
    _version(value, "receipt", None)
    path = value["path"]
    if not isinstance(path, list) or len(path) > 64:
        raise ReceiptError("RECEIPT_MALFORMED", "expected path to be an array of at most 64 hashes")
    return Receipt(
        statement=_bytes(value["statement"], "statement", max_size=MAX_RECEIPT_BYTES),
        seal=_bytes(value["seal"], "seal", max_size=MAX_RECEIPT_BYTES),
        index=_uint(value["index"], "index"),
        path=tuple(_bytes(p, "path entry", DIGEST_SIZE) for p in path),
    )


def _commitment(value: Any, what: str) -> Commitment:
    item = _map(value, what, {"kind", "digest"})
    return Commitment(
        kind=_text(item["kind"], f"{what}.kind"), digest=_bytes(item["digest"], f"{what}.digest", max_size=64)
    )


def _params(value: Any) -> dict[str, int | str]:
    if not isinstance(value, dict) or len(value) > 32:
        raise ReceiptError("RECEIPT_MALFORMED", "expected params to be a map of at most 32 entries")
    out: dict[str, int | str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or isinstance(item, bool) or not isinstance(item, int | str):
            raise ReceiptError(
                "RECEIPT_MALFORMED",
                f"expected params text -> int|text, found {describe_value(key)}: {describe_value(item)}",
            )
        out[key] = item
    return out


def decode_statement(raw: bytes) -> Statement:
    keys = {"v", "type", "op", "model", "input", "output", "nonce", "timestamp_ms", "seq", "attestation"}
    value = _map(_loads(raw, "statement"), "statement", keys, frozenset({"params"}))
    _version(value, "statement", STATEMENT_TYPE)
    op = _text(value["op"], "op")
    if op not in OPERATIONS:
        raise ReceiptError("RECEIPT_MALFORMED", f"expected op in {sorted(OPERATIONS)}, found {describe_value(op)}")
    return Statement(
        op=op,
        model=_bytes(value["model"], "model", DIGEST_SIZE),
        input=_commitment(value["input"], "input"),
        output=_commitment(value["output"], "output"),
        nonce=_bytes(value["nonce"], "nonce", max_size=MAX_NONCE_BYTES),
        timestamp_ms=_uint(value["timestamp_ms"], "timestamp_ms"),
        seq=_uint(value["seq"], "seq"),
        attestation=_bytes(value["attestation"], "attestation", DIGEST_SIZE),
        params=_params(value.get("params", {})),
    )


def decode_batch_root(raw: bytes) -> BatchRoot:
    value = _map(_loads(raw, "batch root"), "batch root", {"v", "type", "root", "size", "attestation"})
    _version(value, "batch root", BATCH_ROOT_TYPE)
    return BatchRoot(
        root=_bytes(value["root"], "root", DIGEST_SIZE),
        size=_uint(value["size"], "size"),
        attestation=_bytes(value["attestation"], "attestation", DIGEST_SIZE),
    )
