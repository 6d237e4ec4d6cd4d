"""Rejections raised while verifying a Nitro attestation document.

Every class is an :class:`AttestationError`, itself a
:class:`~trustdial_verifier.errors.VerificationError`; callers branch on the stable ``code``
(the full table is in ``docs/attestation-errors.md``).
"""

from __future__ import annotations

from trustdial_verifier.errors import VerificationError


class AttestationError(VerificationError):
    """Base of every attestation rejection."""


class DocumentFormatError(AttestationError):
    """COSE_Sign1 envelope or payload is malformed: ``DOCUMENT_TOO_LARGE``, ``COSE_SHAPE``,
    ``COSE_ALGORITHM``, ``PAYLOAD_FIELD``, ``PAYLOAD_MISSING_FIELD``, ``PAYLOAD_UNKNOWN_FIELD``,
    and the CBOR reader's ``CBOR_*`` codes."""


class SignatureError(AttestationError):
    """The ES384 signature over the received payload does not verify: ``COSE_SIGNATURE``."""


class CertificateChainError(AttestationError):
    """The certificate chain does not lead to the trusted root: ``CHAIN_ROOT_MISMATCH``,
    ``CHAIN_NAME``, ``CHAIN_SIGNATURE``, ``CHAIN_ALGORITHM``, ``CHAIN_CONSTRAINT``,
    ``CERT_MALFORMED``, ``CERT_TIME``."""


class DebugModeError(AttestationError):
    """The enclave runs in debug mode (PCR0 all zero) and debug was not allowed: ``DEBUG_MODE``."""


class PolicyError(AttestationError):
    """The document is authentic but does not satisfy the caller's policy: ``POLICY_EMPTY``,
    ``PCR_MISMATCH``, ``PCR_MISSING``, ``NONCE_MISMATCH``, ``USER_DATA_MISMATCH``,
    ``PUBLIC_KEY_MISMATCH``, ``STALE``, ``FROM_FUTURE``."""
