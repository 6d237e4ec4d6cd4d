"""Per-response receipts: the batch root, statement and receipt models and their canonical encodings,
Merkle leaves, the seal's header and envelope, and opening a receipt.

Unstable: see :mod:`trustdial_verifier.unstable`."""

from trustdial_verifier._internal.receipts import ReceiptExpectation, check_statement, open_receipt
from trustdial_verifier._internal.receipts.merkle import leaf_hash
from trustdial_verifier._internal.receipts.model import (
    FORMAT_VERSION,
    OPERATIONS,
    STATEMENT_TYPE,
    BatchRoot,
    Receipt,
    decode_receipt,
    decode_statement,
)
from trustdial_verifier._internal.receipts.seal import encode_seal, protected_header

__all__ = [
    "FORMAT_VERSION",
    "OPERATIONS",
    "STATEMENT_TYPE",
    "BatchRoot",
    "Receipt",
    "ReceiptExpectation",
    "check_statement",
    "decode_receipt",
    "decode_statement",
    "encode_seal",
    "leaf_hash",
    "open_receipt",
    "protected_header",
]
