"""TEE receipts: what the enclave signs about each response, and how to check it.

Public surface: :class:`~verifier.receipts.model.Receipt`, :class:`~verifier.receipts.model.Statement`,
:func:`~verifier.receipts.verify.verify_receipt` (full offline check against an attestation document),
:func:`~verifier.receipts.verify.open_receipt` (signature + inclusion under an already verified key) and
:class:`~verifier.receipts.verify.ReceiptExpectation`. Format: docs/receipts.md.
"""

from verifier.receipts.errors import ReceiptError
from verifier.receipts.model import BatchRoot, Commitment, Receipt, Statement
from verifier.receipts.verify import ReceiptExpectation, VerifiedReceipt, check_statement, open_receipt

__all__ = [
    "BatchRoot",
    "Commitment",
    "Receipt",
    "ReceiptError",
    "ReceiptExpectation",
    "Statement",
    "VerifiedReceipt",
    "check_statement",
    "open_receipt",
]
