"""Offline check of a receipt against its key-binding attestation document.

The binding document is verified (chain, signature, debug mode, the caller's policy, e.g.
expected PCRs) as of its own signed timestamp: a Nitro leaf certificate lives about three
hours while an enclave and its receipt key may live for days, and the question the document
answers is "which enclave held this key when it was created". Freshness of a live enclave is
the client's nonce challenge (trustdial_verifier._internal.client), not this offline check.
"""

from __future__ import annotations

import dataclasses

from cryptography import x509

from trustdial_verifier._internal.attestation.verify import (
    AllOf,
    AnyOf,
    AttestationDocument,
    AttestationPolicy,
    MaxAge,
    UserDataEquals,
    document_digest,
    read_unverified_timestamp,
    verify_attestation,
)
from trustdial_verifier._internal.receipts.errors import ReceiptError
from trustdial_verifier._internal.receipts.verify import (
    ReceiptExpectation,
    VerifiedReceipt,
    check_statement,
    open_receipt,
)
from trustdial_verifier.errors import InputError

#: The enclave puts this in ``user_data`` of every document that binds a receipt key.
BINDING_USER_DATA = b"trustdial/receipt-key/v1"


def verify_binding_document(
    document: bytes, policy: AttestationPolicy, *, root: x509.Certificate | None = None, allow_debug: bool = False
) -> AttestationDocument:
    """Verify a key-binding document as of its own timestamp; it must carry a public key."""
    if _contains_max_age(policy):
        raise InputError(
            "CONFLICTING_OPTIONS",
            "MaxAge cannot apply to a binding document: it is verified as of its own timestamp, where its age is "
            "always 0; freshness of a live enclave is the client's nonce challenge",
        )
    at = read_unverified_timestamp(document)
    verified = verify_attestation(
        document, AllOf([policy, UserDataEquals(BINDING_USER_DATA)]), root=root, at=at, allow_debug=allow_debug
    )
    if not verified.public_key:
        raise ReceiptError("RECEIPT_KEY", "expected the binding attestation document to carry a public key, found none")
    return verified


def _contains_max_age(policy: object) -> bool:
    if isinstance(policy, MaxAge):
        return True
    if isinstance(policy, AllOf | AnyOf):
        return any(_contains_max_age(child) for child in policy.policies)
    return False


def verify_receipt(
    receipt: bytes,
    *,
    attestation: bytes,
    policy: AttestationPolicy,
    expected: ReceiptExpectation,
    root: x509.Certificate | None = None,
    allow_debug: bool = False,
) -> VerifiedReceipt:
    """Everything a third party checks: the binding document under ``policy``, the seal under
    the key it binds, the inclusion path, and the statement against ``expected``."""
    document = verify_binding_document(attestation, policy, root=root, allow_debug=allow_debug)
    if document.public_key is None:  # verify_binding_document refuses this; explicit so python -O cannot drop it
        raise ReceiptError("RECEIPT_KEY", "expected the binding attestation document to carry a public key, found none")
    opened = open_receipt(receipt, public_key=document.public_key, attestation_digest=document_digest(document.raw))
    floor = dataclasses.replace(expected, not_before_ms=max(expected.not_before_ms, document.timestamp_ms))
    check_statement(opened.statement, floor)
    return opened
