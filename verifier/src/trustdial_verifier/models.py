"""The evidence and the verified results, as typed objects (the nouns of :mod:`trustdial_verifier`).

Inputs a caller builds: :class:`Tensor` (what was sent or received), :class:`ReceiptExpectation` (what the caller
knows independently of the enclave) and :class:`CompositeOptions` (everything one composite check needs).
Results the ``verify_*`` functions return, only after every check passed: :class:`AttestationDocument`,
:class:`VerifiedReceipt`, :class:`ProofReport`, :class:`Manifest`, :class:`EifMeasurement` and
:class:`VerifiedComposite`. Closed sets of names are ``StrEnum``: :class:`TrustMode`, :class:`EvidenceKind`,
:class:`ReceiptOperation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from trustdial_verifier._internal.attestation.document import AttestationDocument
from trustdial_verifier._internal.composite.options import DEFAULT_MAX_ATTESTATION_AGE_S
from trustdial_verifier._internal.composite.policy import PipelinePolicy
from trustdial_verifier._internal.eif.reader import EifMeasurement, SectionInfo
from trustdial_verifier._internal.eif.signature import EifSignature
from trustdial_verifier._internal.kinds import EvidenceKind, ReceiptOperation, TrustMode
from trustdial_verifier._internal.measurements.manifest import Manifest
from trustdial_verifier._internal.proof.verify import ProofReport
from trustdial_verifier._internal.receipts.model import BatchRoot, Commitment, Receipt, Statement
from trustdial_verifier._internal.receipts.verify import ReceiptExpectation, VerifiedReceipt
from trustdial_verifier._internal.tensors import Tensor
from trustdial_verifier.errors import InputError

__all__ = [
    "AttestationDocument",
    "BatchRoot",
    "Commitment",
    "CompositeOptions",
    "EifMeasurement",
    "EifSignature",
    "EvidenceKind",
    "Manifest",
    "ProofReport",
    "Receipt",
    "ReceiptExpectation",
    "ReceiptOperation",
    "SectionInfo",
    "Statement",
    "StepEvidence",
    "Tensor",
    "TrustMode",
    "VerifiedComposite",
    "VerifiedReceipt",
    "VerifiedStep",
]

#: A request nonce as the composite format states it: 32 bytes, as 64 hex digits.
REQUEST_NONCE_HEX_DIGITS = 64
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class CompositeOptions:
    """Everything :func:`~trustdial_verifier.verify_composite` checks a composite receipt against.

    ``manifest`` and ``manifest_key``: the signed measurement manifest (COSE_Sign1 bytes) and its signer's P-384
    public key (PEM, DER or a loaded key); the PCRs, model hashes, zk pins and policy pin all come from it, never
    from the receipt. ``policy``: the pipeline policy the receipt must follow (None: the manifest's pin decides).
    ``zk_artifacts``: the published zk artifacts, one sub-directory per zk segment (needed for zk steps).
    ``root``: a root certificate instead of the pinned AWS Nitro root. ``allow_debug`` / ``allow_dev_srs``:
    DANGER, accept debug-mode enclaves / proofs under a development SRS. ``max_attestation_age_s``: how long after
    its key's attestation a TEE step may be signed. ``at`` (timezone-aware; None = now) and ``max_age_s``: the
    verification time and how old the inference may be then (None: its age is not limited). ``request_nonce``:
    the nonce the caller sent (64 hex digits); the receipt must answer it, signed by an enclave step.
    """

    manifest: bytes
    manifest_key: bytes | ec.EllipticCurvePublicKey
    policy: PipelinePolicy | None = None
    zk_artifacts: Path | None = None
    root: x509.Certificate | None = None
    allow_debug: bool = False
    allow_dev_srs: bool = False
    max_attestation_age_s: int = DEFAULT_MAX_ATTESTATION_AGE_S
    at: datetime | None = None
    max_age_s: int | None = None
    request_nonce: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.manifest, bytes | bytearray | memoryview):
            found = type(self.manifest).__name__
            raise InputError("BAD_OPTIONS", f"expected the signed manifest as bytes, found {found}")
        if not isinstance(self.manifest_key, bytes | bytearray | memoryview | ec.EllipticCurvePublicKey):
            found = type(self.manifest_key).__name__
            raise InputError("BAD_OPTIONS", f"expected the manifest key as PEM/DER bytes or a P-384 key, found {found}")
        if self.policy is not None and not isinstance(self.policy, PipelinePolicy):
            raise InputError("BAD_OPTIONS", f"expected a PipelinePolicy or None, found {type(self.policy).__name__}")
        for name in ("max_attestation_age_s", "max_age_s"):
            value = getattr(self, name)
            if value is None and name == "max_age_s":
                continue
            if type(value) is not int or value < 0:
                raise InputError("BAD_OPTIONS", f"expected {name} as whole seconds >= 0, found {type(value).__name__}")
        if self.at is not None and (not isinstance(self.at, datetime) or self.at.utcoffset() is None):
            raise InputError("NAIVE_TIME", "expected the verification time `at` as a timezone-aware datetime")
        if self.request_nonce is not None and (
            not isinstance(self.request_nonce, str)
            or len(self.request_nonce) != REQUEST_NONCE_HEX_DIGITS
            or not set(self.request_nonce) <= _HEX_DIGITS
        ):
            raise InputError("BAD_NONCE", f"expected the request nonce as {REQUEST_NONCE_HEX_DIGITS} hex digits")


@dataclass(frozen=True)
class StepEvidence:
    """One verified piece of a step's evidence, for people: what it proved and who vouches for it."""

    kind: EvidenceKind
    proven: str
    by: str
    evidence_bytes: int


@dataclass(frozen=True)
class VerifiedStep:
    """One step of a verified composite receipt: the mode it ran in, the mode its policy required and why."""

    index: int
    segment: str
    mode: TrustMode
    required_mode: TrustMode
    reason: str
    proven_by: tuple[str, ...]  # who vouches for each piece of evidence (receipt key + PCR0, or the vk)
    seconds: float | None  # the cost the step states (unverified, for display)
    evidence_bytes: int
    evidence: tuple[StepEvidence, ...] = ()


@dataclass(frozen=True)
class VerifiedComposite:
    """A composite receipt whose every step, link and policy check passed.

    ``outputs``: the pipeline's public outputs (tensors no segment consumes), with the values the receipt carries
    and its steps proved. Private outputs are absent: the receipt holds only their commitments.
    """

    pipeline: str
    policy_sha256: str
    manifest_sha256: str
    request_nonce: str
    steps: tuple[VerifiedStep, ...]
    outputs: Mapping[str, Tensor] = field(default_factory=dict)
