"""Checking a receipt: seal signature and inclusion under an attested key, then the statement
against what the caller sent and received (docs/receipts.md §5).

:func:`open_receipt` needs the receipt key and the digest of the attestation document that
binds it (the client caches both after verifying the document once); :func:`check_statement`
compares the statement with the caller's own tensors, model, nonce and sequence floor. Every
expected value is mandatory: nothing is skipped because the caller left it out.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field

from trustdial_verifier._internal.receipts.errors import ReceiptError
from trustdial_verifier._internal.receipts.merkle import leaf_hash, root_from_path
from trustdial_verifier._internal.receipts.model import (
    OPERATIONS,
    BatchRoot,
    Commitment,
    Receipt,
    Statement,
    decode_batch_root,
    decode_receipt,
    decode_statement,
)
from trustdial_verifier._internal.receipts.seal import decode_seal, load_receipt_key, verify_seal
from trustdial_verifier._internal.tensors import COMMITMENT_KIND_SHA256, Tensor, commit_tensors

#: How far (ms) a statement's timestamp may precede the attestation document's timestamp.
CLOCK_TOLERANCE_MS = 5_000


@dataclass(frozen=True)
class VerifiedReceipt:
    """A receipt whose seal and inclusion path verified under the attested key."""

    receipt: Receipt
    statement: Statement
    batch_root: BatchRoot


@dataclass(frozen=True)
class ReceiptExpectation:
    """What the caller knows independently of the enclave.

    ``models``: the model sha256 values the caller accepts (must not be empty).
    ``inputs``/``outputs``: the tensors the caller sent and received. ``nonce``: the nonce
    the caller sent (``b""`` if it sent none). ``min_seq``: the smallest acceptable sequence
    number (one more than the highest the caller saw before sending). ``not_before_ms``: the
    attestation document's timestamp.
    """

    models: frozenset[bytes]
    inputs: Mapping[str, Tensor]
    outputs: Mapping[str, Tensor]
    nonce: bytes
    op: str = "infer"
    params: Mapping[str, int | str] = field(default_factory=dict)
    min_seq: int = 0
    not_before_ms: int = 0


def open_receipt(
    raw: bytes,
    *,
    public_key: bytes,
    attestation_digest: bytes,
    verified_seals: MutableMapping[bytes, BatchRoot] | None = None,
) -> VerifiedReceipt:
    """Decode ``raw``, verify its seal under ``public_key`` (DER SPKI) and its inclusion path,
    and check both the batch root and the statement name ``attestation_digest``.

    ``verified_seals`` (optional, one per ``public_key``): seal bytes already verified under that key and their
    batch roots, so that the receipts of one micro-batch (e.g. the chunks of a stream) cost one signature check."""
    receipt = decode_receipt(raw)
    batch = verified_seals.get(receipt.seal) if verified_seals is not None else None
    if batch is None:
        key = load_receipt_key(public_key)
        seal = decode_seal(receipt.seal)
        verify_seal(seal, key)
        batch = decode_batch_root(seal.payload)
        if verified_seals is not None:
            if len(verified_seals) >= 64:
                verified_seals.clear()
            verified_seals[receipt.seal] = batch
    if batch.attestation != attestation_digest:
        raise ReceiptError(
            "RECEIPT_ATTESTATION_MISMATCH",
            f"expected batch root bound to attestation {attestation_digest.hex()}, found {batch.attestation.hex()}",
        )
    if batch.size != 0 and receipt.index >= batch.size:
        raise ReceiptError("RECEIPT_INCLUSION", f"expected index < batch size {batch.size}, found {receipt.index}")
    root = root_from_path(leaf_hash(receipt.statement), receipt.index, batch.size, receipt.path)
    if root != batch.root:
        raise ReceiptError("RECEIPT_INCLUSION", "the statement's inclusion path does not lead to the sealed batch root")
    statement = decode_statement(receipt.statement)
    if statement.attestation != attestation_digest:
        raise ReceiptError(
            "RECEIPT_ATTESTATION_MISMATCH",
            f"expected statement bound to attestation {attestation_digest.hex()}, found {statement.attestation.hex()}",
        )
    return VerifiedReceipt(receipt=receipt, statement=statement, batch_root=batch)


def _check_commitment(which: str, statement_value: Commitment, tensors: Mapping[str, Tensor]) -> None:
    if statement_value.kind != COMMITMENT_KIND_SHA256:
        raise ReceiptError(
            "RECEIPT_COMMITMENT_KIND",
            f"expected {which} commitment kind {COMMITMENT_KIND_SHA256!r}, found {statement_value.kind!r}",
        )
    actual = commit_tensors(tensors)
    if statement_value.digest != actual:
        raise ReceiptError(
            f"RECEIPT_{which.upper()}_MISMATCH",
            f"expected {which} commitment {actual.hex()} over the tensors in hand, "
            f"receipt says {statement_value.digest.hex()}",
        )


def check_statement(statement: Statement, expected: ReceiptExpectation) -> None:
    """Compare a verified statement with the caller's expectation; raise on the first difference."""
    if not expected.models:
        raise ReceiptError("RECEIPT_NO_EXPECTED_MODEL", "refusing to check a receipt without any expected model sha256")
    if expected.op not in OPERATIONS:
        raise ReceiptError(
            "RECEIPT_OP_MISMATCH", f"expected op must be one of {sorted(OPERATIONS)}, found {expected.op!r}"
        )
    if statement.op != expected.op:
        raise ReceiptError("RECEIPT_OP_MISMATCH", f"expected op {expected.op!r}, found {statement.op!r}")
    if statement.model not in expected.models:
        raise ReceiptError(
            "RECEIPT_MODEL_MISMATCH",
            f"expected model sha256 in {sorted(m.hex() for m in expected.models)}, found {statement.model.hex()}",
        )
    _check_commitment("input", statement.input, expected.inputs)
    _check_commitment("output", statement.output, expected.outputs)
    if statement.nonce != expected.nonce:
        raise ReceiptError(
            "RECEIPT_NONCE_MISMATCH", f"expected nonce {expected.nonce.hex()}, found {statement.nonce.hex()}"
        )
    if dict(statement.params) != dict(expected.params):
        raise ReceiptError(
            "RECEIPT_PARAMS_MISMATCH", f"expected params {dict(expected.params)}, found {dict(statement.params)}"
        )
    if statement.seq < expected.min_seq:
        raise ReceiptError(
            "RECEIPT_SEQUENCE_ROLLBACK", f"expected sequence number >= {expected.min_seq}, found {statement.seq}"
        )
    if statement.timestamp_ms + CLOCK_TOLERANCE_MS < expected.not_before_ms:
        raise ReceiptError(
            "RECEIPT_TIMESTAMP",
            f"expected a timestamp no earlier than the attestation ({expected.not_before_ms} ms), "
            f"found {statement.timestamp_ms}",
        )
