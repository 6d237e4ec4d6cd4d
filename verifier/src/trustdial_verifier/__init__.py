"""trustdial's standalone verifier: check attestation documents, EIF measurements, receipts and proofs offline,
against published measurements, failing closed.

The public surface is this package: one ``verify_*`` function per kind of evidence (:mod:`.verify`), the policies
a caller states (:mod:`.policy`), the evidence and result types (:mod:`.models`) and the errors
(:mod:`.errors`, with the subclasses each kind of evidence raises). Everything under ``_internal`` may change
without notice.

>>> from trustdial_verifier import PcrsEqual, verify_attestation
>>> document = verify_attestation(raw, PcrsEqual({0: pcr0, 1: pcr1, 2: pcr2}))  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trustdial_verifier._internal.attestation.certificate_chain import IntermediateCache
    from trustdial_verifier._internal.attestation.errors import (
        AttestationError,
        CertificateChainError,
        DebugModeError,
        DocumentFormatError,
        PolicyError,
        SignatureError,
    )
    from trustdial_verifier._internal.composite.errors import CompositeError, PolicyFileError
    from trustdial_verifier._internal.eif.errors import EifError
    from trustdial_verifier._internal.measurements.errors import ManifestError
    from trustdial_verifier._internal.receipts.errors import ReceiptError
    from trustdial_verifier._internal.tensors import TensorError
    from trustdial_verifier.errors import InputError, VerificationError
    from trustdial_verifier.models import (
        AttestationDocument,
        BatchRoot,
        Commitment,
        CompositeOptions,
        EifMeasurement,
        EifSignature,
        EvidenceKind,
        Manifest,
        ProofReport,
        Receipt,
        ReceiptExpectation,
        ReceiptOperation,
        SectionInfo,
        Statement,
        StepEvidence,
        Tensor,
        TrustMode,
        VerifiedComposite,
        VerifiedReceipt,
        VerifiedStep,
    )
    from trustdial_verifier.policy import (
        AllOf,
        AnyOf,
        AttestationPolicy,
        MaxAge,
        NonceEquals,
        PcrsEqual,
        PipelinePolicy,
        PublicKeyEquals,
        Segment,
        UnsafeNoPolicy,
        UserDataEquals,
        load_pipeline_policy,
        parse_pipeline_policy,
        pins_from_manifest,
        pipeline_policy_sha256,
    )
    from trustdial_verifier.verify import (
        recompute_pcrs,
        verify_attestation,
        verify_composite,
        verify_manifest,
        verify_proof,
        verify_receipt,
    )

__all__ = [
    "AllOf",
    "AnyOf",
    "AttestationDocument",
    "AttestationError",
    "AttestationPolicy",
    "BatchRoot",
    "CertificateChainError",
    "Commitment",
    "CompositeError",
    "CompositeOptions",
    "DebugModeError",
    "DocumentFormatError",
    "EifError",
    "EifMeasurement",
    "EifSignature",
    "EvidenceKind",
    "InputError",
    "IntermediateCache",
    "Manifest",
    "ManifestError",
    "MaxAge",
    "NonceEquals",
    "PcrsEqual",
    "PipelinePolicy",
    "PolicyError",
    "PolicyFileError",
    "ProofReport",
    "PublicKeyEquals",
    "Receipt",
    "ReceiptError",
    "ReceiptExpectation",
    "ReceiptOperation",
    "SectionInfo",
    "Segment",
    "SignatureError",
    "Statement",
    "StepEvidence",
    "Tensor",
    "TensorError",
    "TrustMode",
    "UnsafeNoPolicy",
    "UserDataEquals",
    "VerificationError",
    "VerifiedComposite",
    "VerifiedReceipt",
    "VerifiedStep",
    "load_pipeline_policy",
    "parse_pipeline_policy",
    "pins_from_manifest",
    "pipeline_policy_sha256",
    "recompute_pcrs",
    "verify_attestation",
    "verify_composite",
    "verify_manifest",
    "verify_proof",
    "verify_receipt",
]
__version__ = "0.1.0"

#: Where each public name is defined. Loaded on first use (PEP 562): ``import trustdial_verifier._internal.x`` (the
#: enclave's encoders) must not pull in every verifier at start.
_SOURCES: dict[str, str] = {
    "AllOf": "trustdial_verifier.policy",
    "AnyOf": "trustdial_verifier.policy",
    "AttestationDocument": "trustdial_verifier.models",
    "AttestationError": "trustdial_verifier._internal.attestation.errors",
    "AttestationPolicy": "trustdial_verifier.policy",
    "BatchRoot": "trustdial_verifier.models",
    "CertificateChainError": "trustdial_verifier._internal.attestation.errors",
    "Commitment": "trustdial_verifier.models",
    "CompositeError": "trustdial_verifier._internal.composite.errors",
    "CompositeOptions": "trustdial_verifier.models",
    "DebugModeError": "trustdial_verifier._internal.attestation.errors",
    "DocumentFormatError": "trustdial_verifier._internal.attestation.errors",
    "EifError": "trustdial_verifier._internal.eif.errors",
    "EifMeasurement": "trustdial_verifier.models",
    "EifSignature": "trustdial_verifier.models",
    "EvidenceKind": "trustdial_verifier.models",
    "InputError": "trustdial_verifier.errors",
    "IntermediateCache": "trustdial_verifier._internal.attestation.certificate_chain",
    "Manifest": "trustdial_verifier.models",
    "ManifestError": "trustdial_verifier._internal.measurements.errors",
    "MaxAge": "trustdial_verifier.policy",
    "NonceEquals": "trustdial_verifier.policy",
    "PcrsEqual": "trustdial_verifier.policy",
    "PipelinePolicy": "trustdial_verifier.policy",
    "PolicyError": "trustdial_verifier._internal.attestation.errors",
    "PolicyFileError": "trustdial_verifier._internal.composite.errors",
    "ProofReport": "trustdial_verifier.models",
    "PublicKeyEquals": "trustdial_verifier.policy",
    "Receipt": "trustdial_verifier.models",
    "ReceiptError": "trustdial_verifier._internal.receipts.errors",
    "ReceiptExpectation": "trustdial_verifier.models",
    "ReceiptOperation": "trustdial_verifier.models",
    "SectionInfo": "trustdial_verifier.models",
    "Segment": "trustdial_verifier.policy",
    "SignatureError": "trustdial_verifier._internal.attestation.errors",
    "Statement": "trustdial_verifier.models",
    "StepEvidence": "trustdial_verifier.models",
    "Tensor": "trustdial_verifier.models",
    "TensorError": "trustdial_verifier._internal.tensors",
    "TrustMode": "trustdial_verifier.models",
    "UnsafeNoPolicy": "trustdial_verifier.policy",
    "UserDataEquals": "trustdial_verifier.policy",
    "VerificationError": "trustdial_verifier.errors",
    "VerifiedComposite": "trustdial_verifier.models",
    "VerifiedReceipt": "trustdial_verifier.models",
    "VerifiedStep": "trustdial_verifier.models",
    "load_pipeline_policy": "trustdial_verifier.policy",
    "parse_pipeline_policy": "trustdial_verifier.policy",
    "pins_from_manifest": "trustdial_verifier.policy",
    "pipeline_policy_sha256": "trustdial_verifier.policy",
    "recompute_pcrs": "trustdial_verifier.verify",
    "verify_attestation": "trustdial_verifier.verify",
    "verify_composite": "trustdial_verifier.verify",
    "verify_manifest": "trustdial_verifier.verify",
    "verify_proof": "trustdial_verifier.verify",
    "verify_receipt": "trustdial_verifier.verify",
}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'trustdial_verifier' has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
