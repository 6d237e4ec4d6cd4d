"""Rejection type for receipts; every code starts with ``RECEIPT_`` and is listed in docs/receipts.md §6."""

from __future__ import annotations

from trustdial_verifier.errors import VerificationError


class ReceiptError(VerificationError):
    """A receipt was examined and rejected."""
