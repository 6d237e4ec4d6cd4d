"""The verified contents of a Nitro attestation document."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime


def document_digest(raw: bytes) -> bytes:
    """SHA-256 of the raw COSE_Sign1 bytes: the value receipts use to bind an attestation document."""
    return hashlib.sha256(raw).digest()


@dataclass(frozen=True)
class AttestationDocument:
    """An attestation document whose signature, chain and policy were checked.

    Only :func:`trustdial_verifier._internal.attestation.verify.verify_attestation` returns these; there is no
    public way to obtain one from unverified bytes. ``payload`` and ``raw`` are the bytes
    exactly as received.
    """

    module_id: str
    timestamp_ms: int
    digest: str
    pcrs: dict[int, bytes]
    certificate: bytes
    cabundle: tuple[bytes, ...]
    public_key: bytes | None
    user_data: bytes | None
    nonce: bytes | None
    debug_mode: bool
    raw: bytes = field(repr=False)
    payload: bytes = field(repr=False)

    @property
    def timestamp(self) -> datetime:
        """The NSM's signing time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)

    @property
    def sha256(self) -> bytes:
        """SHA-256 of the raw COSE bytes (same as :func:`document_digest`)."""
        return document_digest(self.raw)

    @property
    def sha384(self) -> bytes:
        """SHA-384 of the raw COSE bytes."""
        return hashlib.sha384(self.raw).digest()
