"""trustdial's standalone verifier: check attestation documents, EIF measurements, receipts and proofs offline,
against published measurements, failing closed.

The public surface is this package: one ``verify_*`` function per kind of evidence (:mod:`.verify`), the policies
a caller states (:mod:`.policy`), the evidence and result types (:mod:`.models`) and the errors
(:mod:`.errors`, with the subclasses each kind of evidence raises). Everything under ``_internal`` may change
without notice.

>>> from trustdial_verifier import PcrsEqual, verify_attestation
>>> document = verify_attestation(raw, PcrsEqual({0: pcr0, 1: pcr1, 2: pcr2}))  # doctest: +SKIP
"""

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
    "pipeline_policy_sha256",
    "recompute_pcrs",
    "verify_attestation",
    "verify_composite",
    "verify_manifest",
    "verify_proof",
    "verify_receipt",
]
__version__ = "0.1.0"
