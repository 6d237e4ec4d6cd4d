"""Verify AWS Nitro Enclaves attestation documents: the entry point and its public names.

>>> doc = verify_attestation(raw, AllOf([PcrsEqual({0: pcr0, 1: pcr1, 2: pcr2}), NonceEquals(nonce)]))

Steps, each failing closed with a stable code: size cap; COSE_Sign1 shape (tag 18 optional,
protected header exactly ``{1: -35}``); payload fields and sizes; certificate path from the
trusted root (pinned AWS Root-G1 unless ``root`` is given) at time ``at``; ES384 signature over
the payload bytes as received; debug mode (PCR0 all zero) unless ``allow_debug``; the policy.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509

from trustdial_verifier._internal.attestation.certificate_chain import IntermediateCache, verify_chain
from trustdial_verifier._internal.attestation.document import AttestationDocument, document_digest
from trustdial_verifier._internal.attestation.envelope import parse_cose_sign1, verify_es384
from trustdial_verifier._internal.attestation.errors import (
    AttestationError,
    CertificateChainError,
    DebugModeError,
    DocumentFormatError,
    PolicyError,
    SignatureError,
)
from trustdial_verifier._internal.attestation.nitro_root import AWS_NITRO_ROOT_G1
from trustdial_verifier._internal.attestation.payload import parse_attestation_payload
from trustdial_verifier._internal.attestation.policy import (
    AllOf,
    AnyOf,
    AttestationPolicy,
    MaxAge,
    NonceEquals,
    PcrsEqual,
    PublicKeyEquals,
    UnsafeNoPolicy,
    UserDataEquals,
    apply_policy,
)
from trustdial_verifier.errors import InputError

MAX_DOCUMENT_BYTES = 16 * 1024
DEBUG_PCR_INDEX = 0

__all__ = [
    "AWS_NITRO_ROOT_G1",
    "MAX_DOCUMENT_BYTES",
    "AllOf",
    "AnyOf",
    "AttestationDocument",
    "AttestationError",
    "AttestationPolicy",
    "CertificateChainError",
    "DebugModeError",
    "DocumentFormatError",
    "IntermediateCache",
    "MaxAge",
    "NonceEquals",
    "PcrsEqual",
    "PolicyError",
    "PublicKeyEquals",
    "SignatureError",
    "UnsafeNoPolicy",
    "UserDataEquals",
    "document_digest",
    "read_unverified_timestamp",
    "verify_attestation",
]


def verify_attestation(
    document: bytes,
    policy: AttestationPolicy,
    *,
    root: x509.Certificate | None = None,
    at: datetime | None = None,
    allow_debug: bool = False,
    cache: IntermediateCache | None = None,
) -> AttestationDocument:
    """Verify a raw COSE_Sign1 attestation document and return its checked contents.

    ``root`` None = the pinned AWS Nitro Root-G1. ``at`` None = now (must be timezone-aware).
    ``cache`` optionally remembers verified intermediate certificates between calls.
    Raises an :class:`AttestationError` subclass on any rejection.
    """
    if not callable(getattr(policy, "verify", None)):
        raise PolicyError("POLICY_EMPTY", f"expected an attestation policy, found {policy!r}: refusing to accept")
    when = _verification_time(at)
    raw = _as_bytes(document)
    message = parse_cose_sign1(raw)
    payload = parse_attestation_payload(message.payload)
    leaf_key = verify_chain(root or AWS_NITRO_ROOT_G1, payload.cabundle, payload.certificate, when, cache)
    verify_es384(message, leaf_key)
    pcr0 = payload.pcrs.get(DEBUG_PCR_INDEX)
    if pcr0 is None:
        raise DocumentFormatError("PAYLOAD_FIELD", "expected PCR0 in the document to tell whether it is debug mode")
    debug_mode = not any(pcr0)
    if debug_mode and not allow_debug:
        raise DebugModeError(
            "DEBUG_MODE", "expected a production enclave, found PCR0 all zero (debug mode); allow_debug was not set"
        )
    verified = AttestationDocument(
        module_id=payload.module_id,
        timestamp_ms=payload.timestamp_ms,
        digest=payload.digest,
        pcrs=dict(payload.pcrs),
        certificate=payload.certificate,
        cabundle=payload.cabundle,
        public_key=payload.public_key,
        user_data=payload.user_data,
        nonce=payload.nonce,
        debug_mode=debug_mode,
        raw=raw,
        payload=message.payload,
    )
    apply_policy(policy, verified, when)
    return verified


def read_unverified_timestamp(document: bytes) -> datetime:
    """The timestamp the document claims, read WITHOUT verifying anything.

    Only for choosing the verification time when auditing old evidence (``--at doc``):
    :func:`verify_attestation` then checks that the signed timestamp and chain agree.
    """
    message = parse_cose_sign1(_as_bytes(document))
    payload = parse_attestation_payload(message.payload)
    return datetime.fromtimestamp(payload.timestamp_ms / 1000, tz=UTC)


def _as_bytes(document: bytes) -> bytes:
    if not isinstance(document, bytes | bytearray | memoryview):
        raise InputError("DOCUMENT_TYPE", f"expected the document as bytes, found {type(document).__name__}")
    raw = bytes(document)
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DocumentFormatError(
            "DOCUMENT_TOO_LARGE", f"expected at most {MAX_DOCUMENT_BYTES} bytes, found {len(raw)} bytes"
        )
    return raw


def _verification_time(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    if at.tzinfo is None or at.utcoffset() is None:
        raise InputError("NAIVE_TIME", f"expected a timezone-aware verification time, found naive {at.isoformat()}")
    return at.astimezone(UTC)
