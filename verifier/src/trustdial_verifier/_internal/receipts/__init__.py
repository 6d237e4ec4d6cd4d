"""TEE receipts: what the enclave signs about each response, and how to check it.

Public surface: :class:`~trustdial_verifier._internal.receipts.model.Receipt`,
:class:`~trustdial_verifier._internal.receipts.model.Statement`,
:func:`~trustdial_verifier._internal.receipts.verify.verify_receipt` (full offline check against an attestation
document),
:func:`~trustdial_verifier._internal.receipts.verify.open_receipt` (signature + inclusion under an already verified
key) and
:class:`~trustdial_verifier._internal.receipts.verify.ReceiptExpectation`. Format: docs/receipts.md.
"""

from trustdial_verifier._internal.receipts.errors import ReceiptError
from trustdial_verifier._internal.receipts.model import BatchRoot, Commitment, Receipt, Statement
from trustdial_verifier._internal.receipts.verify import (
    ReceiptExpectation,
    VerifiedReceipt,
    check_statement,
    open_receipt,
)

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
