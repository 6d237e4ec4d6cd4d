"""The act of checking: one entry point per kind of evidence (the verbs of :mod:`trustdial_verifier`).

Every function returns a verified result only after every check passed, and otherwise raises a
:class:`~trustdial_verifier.VerificationError` (the evidence was examined and rejected) or an
:class:`~trustdial_verifier.InputError` (the request could not be carried out: wrong argument type, unreadable
file, missing option). Both carry a stable ``code``. Nothing is skipped because an option was left out: a check
that cannot be made is refused.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from trustdial_verifier._internal.attestation import verify as _attestation
from trustdial_verifier._internal.attestation.certificate_chain import IntermediateCache
from trustdial_verifier._internal.composite import verify as _composite
from trustdial_verifier._internal.composite.evidence_tee import check_tee_evidence
from trustdial_verifier._internal.composite.evidence_zk import check_zk_evidence
from trustdial_verifier._internal.composite.manifest_facts import facts_from_manifest
from trustdial_verifier._internal.composite.options import ChainOptions
from trustdial_verifier._internal.composite.policy import VISIBILITY_PUBLIC
from trustdial_verifier._internal.composite.receipt import parse_receipt
from trustdial_verifier._internal.composite.report import StepReport
from trustdial_verifier._internal.eif import measure_eif
from trustdial_verifier._internal.measurements import check_eif_matches, load_public_key, load_signed_manifest
from trustdial_verifier._internal.measurements.errors import ManifestError
from trustdial_verifier._internal.proof import verify as _proof
from trustdial_verifier._internal.proof.tensors import Tensor as ProofTensor
from trustdial_verifier._internal.proof.tensors import tensor_from_bytes
from trustdial_verifier._internal.receipts import attested as _receipts
from trustdial_verifier.errors import InputError
from trustdial_verifier.models import (
    AttestationDocument,
    CompositeOptions,
    EifMeasurement,
    EvidenceKind,
    Manifest,
    ProofReport,
    ReceiptExpectation,
    StepEvidence,
    Tensor,
    TrustMode,
    VerifiedComposite,
    VerifiedReceipt,
    VerifiedStep,
)
from trustdial_verifier.policy import AttestationPolicy

__all__ = [
    "recompute_pcrs",
    "verify_attestation",
    "verify_composite",
    "verify_manifest",
    "verify_proof",
    "verify_receipt",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHECKERS: dict[str, _composite.EvidenceChecker] = {
    EvidenceKind.TEE.value: check_tee_evidence,
    EvidenceKind.ZK.value: check_zk_evidence,
}


def verify_attestation(
    document: bytes,
    policy: AttestationPolicy,
    *,
    root: x509.Certificate | None = None,
    at: datetime | None = None,
    allow_debug: bool = False,
    cache: IntermediateCache | None = None,
) -> AttestationDocument:
    """Verify a raw AWS Nitro attestation document (COSE_Sign1) and return its checked contents.

    Checks, each failing closed with a stable code: size, COSE shape, payload fields, the certificate path from
    ``root`` (None: the pinned AWS Nitro Root-G1) valid at ``at`` (timezone-aware; None: now), the ES384
    signature, debug mode (refused unless ``allow_debug``), then ``policy`` (e.g. ``PcrsEqual``; there is no
    default: pass ``UnsafeNoPolicy()`` to require nothing, by name). ``cache`` remembers verified intermediate
    certificates between calls. Raises an :class:`~trustdial_verifier.AttestationError` on a rejection.
    """
    return _attestation.verify_attestation(document, policy, root=root, at=at, allow_debug=allow_debug, cache=cache)


def verify_receipt(
    receipt: bytes,
    *,
    attestation: bytes,
    policy: AttestationPolicy,
    expected: ReceiptExpectation,
    root: x509.Certificate | None = None,
    allow_debug: bool = False,
) -> VerifiedReceipt:
    """Verify one TEE receipt (CBOR) offline against the attestation document that binds its key.

    The binding document is verified as of its own signed timestamp under ``policy`` (expected PCRs at least);
    then the seal under the key it binds, the statement's inclusion in the sealed batch, and the statement against
    ``expected`` (models, tensors, nonce, operation, sequence floor). Raises
    :class:`~trustdial_verifier.ReceiptError` or :class:`~trustdial_verifier.AttestationError` on a rejection.
    """
    if not isinstance(receipt, bytes | bytearray | memoryview):
        raise InputError("RECEIPT_TYPE", f"expected the receipt as bytes, found {type(receipt).__name__}")
    if not isinstance(expected, ReceiptExpectation):
        raise InputError("BAD_EXPECTATION", f"expected a ReceiptExpectation, found {type(expected).__name__}")
    return _receipts.verify_receipt(
        bytes(receipt), attestation=attestation, policy=policy, expected=expected, root=root, allow_debug=allow_debug
    )


def verify_proof(
    proof: str | os.PathLike[str],
    artifacts_dir: str | os.PathLike[str],
    *,
    expected_sha256: dict[str, str],
    inputs: Tensor | None = None,
    outputs: Tensor | None = None,
    input_poseidon: str | None = None,
    output_poseidon: str | None = None,
    allow_dev_srs: bool = False,
) -> ProofReport:
    """Verify an ezkl proof (``proof.json``) with the artifacts published in ``artifacts_dir``.

    ``expected_sha256`` maps artifact roles (at least ``vk`` and ``settings``; also ``srs``, ``model``,
    ``compiled_circuit``) to digests from a source the directory does not control, e.g. a signed manifest; empty
    pins are refused (``NO_PINS``). ``inputs``/``outputs`` (or their Poseidon hashes) are what the proof must be
    about. A development SRS is refused unless ``allow_dev_srs``. Needs the ``zk`` extra (ezkl).
    """
    return _proof.verify_proof(
        Path(proof),
        Path(artifacts_dir),
        inputs=None if inputs is None else _proof_tensor(inputs, "inputs"),
        outputs=None if outputs is None else _proof_tensor(outputs, "outputs"),
        input_poseidon=input_poseidon,
        output_poseidon=output_poseidon,
        allow_dev_srs=allow_dev_srs,
        expected_sha256=expected_sha256,
    )


def verify_manifest(
    data: bytes, public_key: bytes | ec.EllipticCurvePublicKey, *, eif: EifMeasurement | None = None
) -> Manifest:
    """Verify a signed measurement manifest (COSE_Sign1, ES384) and return it.

    ``public_key``: the signer's P-384 key, PEM/DER bytes or loaded. With ``eif`` (from :func:`recompute_pcrs`),
    also require that image to be the one the manifest describes (digest, PCRs, architecture). Raises
    :class:`~trustdial_verifier.ManifestError` on a rejection.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InputError("MANIFEST_TYPE", f"expected the signed manifest as bytes, found {type(data).__name__}")
    manifest = load_signed_manifest(bytes(data), _manifest_key(public_key))
    if eif is not None:
        check_eif_matches(manifest, eif)
    return manifest


def recompute_pcrs(eif: str | os.PathLike[str], *, file_digests: bool = True) -> EifMeasurement:
    """Validate an Enclave Image File and compute its PCR0/1/2 (and PCR8 when signed) with bounded memory.

    Compare the result with an attestation document's PCRs or a manifest's (:func:`verify_manifest` with
    ``eif=``). ``file_digests`` also computes the file's sha256/sha384. Raises :class:`~trustdial_verifier.EifError`
    on a malformed image, :class:`~trustdial_verifier.InputError` when the file cannot be read.
    """
    try:
        return measure_eif(eif, file_digests=file_digests)
    except FileNotFoundError as err:
        raise InputError("FILE_NOT_FOUND", f"no such EIF file: {os.fspath(eif)}") from err
    except OSError as err:
        raise InputError("FILE_UNREADABLE", f"cannot read EIF file {os.fspath(eif)}: {err.strerror}") from err


def verify_composite(receipt: bytes, options: CompositeOptions) -> VerifiedComposite:
    """Verify a composite (hybrid) receipt end to end and return its verified steps and public outputs.

    One call does what ``trustdial-verify receipt`` does for a composite receipt: the signed manifest under
    ``options.manifest_key``, the pipeline policy pinned by it (or ``options.policy``, which must match the pin),
    every step's evidence with its own checker (TEE receipts under their attestation documents, zk proofs
    under the manifest's pins), then the links between the steps, the trust modes, freshness and the request
    nonce. Raises :class:`~trustdial_verifier.CompositeError` (or the error of the failing evidence) on a
    rejection; :class:`~trustdial_verifier.InputError` when ``options`` cannot be used.
    """
    if not isinstance(options, CompositeOptions):
        raise InputError("BAD_OPTIONS", f"expected CompositeOptions, found {type(options).__name__}")
    if not isinstance(receipt, bytes | bytearray | memoryview):
        raise InputError("RECEIPT_TYPE", f"expected the composite receipt as bytes, found {type(receipt).__name__}")
    data = bytes(receipt)
    manifest = verify_manifest(options.manifest, options.manifest_key)
    at = options.at if options.at is not None else datetime.now(UTC)
    result = _composite.verify_composite(
        data,
        manifest=facts_from_manifest(manifest),
        policy=options.policy,
        checkers=_CHECKERS,
        options=ChainOptions(
            max_attestation_age_s=options.max_attestation_age_s,
            at_ms=(at - _EPOCH) // timedelta(milliseconds=1),
            max_age_s=options.max_age_s,
            request_nonce=None if options.request_nonce is None else options.request_nonce.lower(),
        ),
        checker_options={
            "root": options.root,
            "allow_debug": options.allow_debug,
            "allow_dev_srs": options.allow_dev_srs,
            "zk_artifacts": options.zk_artifacts,
        },
    )
    parsed = parse_receipt(data)  # verified above: the same bytes, now known to be a valid receipt
    consumed = {name for segment in parsed.policy["segments"] for name in segment["inputs"]}
    final = {name for segment in parsed.policy["segments"] for name in segment["outputs"] if name not in consumed}
    outputs = {
        name: Tensor(record.tensor.dtype, tuple(record.tensor.shape), record.tensor.data)
        for name, record in parsed.tensors.items()
        if name in final and record.visibility == VISIBILITY_PUBLIC and record.tensor is not None
    }
    return VerifiedComposite(
        pipeline=result.pipeline,
        policy_sha256=result.policy_sha256,
        manifest_sha256=result.manifest_sha256,
        request_nonce=result.request_nonce,
        steps=tuple(_step(report) for report in result.steps),
        outputs=outputs,
    )


def _step(report: StepReport) -> VerifiedStep:
    return VerifiedStep(
        index=report.index,
        segment=report.segment,
        mode=TrustMode(report.mode),
        required_mode=TrustMode(report.required_mode),
        reason=report.reason,
        proven_by=tuple(report.proven_by),
        seconds=report.seconds,
        evidence_bytes=report.evidence_bytes,
        evidence=tuple(
            StepEvidence(EvidenceKind(piece.kind), piece.proven, piece.by, piece.evidence_bytes)
            for piece in report.evidence
        ),
    )


def _proof_tensor(tensor: Tensor, what: str) -> ProofTensor:
    if not isinstance(tensor, Tensor):
        raise InputError("TENSOR_TYPE", f"expected {what} as a Tensor, found {type(tensor).__name__}")
    return tensor_from_bytes(tensor.dtype, tensor.shape, tensor.data)


def _manifest_key(key: bytes | ec.EllipticCurvePublicKey) -> ec.EllipticCurvePublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP384R1):
            raise ManifestError("MANIFEST_BAD_KEY", f"manifest signing key must be P-384, found {key.curve.name}")
        return key
    if not isinstance(key, bytes | bytearray | memoryview):
        raise InputError("MANIFEST_KEY_TYPE", f"expected the manifest key as PEM/DER bytes, found {type(key).__name__}")
    return load_public_key(bytes(key))
