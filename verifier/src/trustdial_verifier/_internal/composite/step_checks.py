"""The checks of one step's verified evidence: model or verifying-key identity against the manifest, the enclave's
request binding and freshness, stated commitments against proven ones, and a ``tee+zk`` step's two pieces agreeing."""

from __future__ import annotations

from collections.abc import Mapping

from trustdial_verifier._internal.composite.agreement import agree, require_proven_kinds
from trustdial_verifier._internal.composite.errors import CompositeError
from trustdial_verifier._internal.composite.evidence import VerifiedEvidence
from trustdial_verifier._internal.composite.manifest_facts import SegmentMeasurement
from trustdial_verifier._internal.composite.options import ChainOptions
from trustdial_verifier._internal.composite.receipt import BoundaryTensor, Commitment, Step


def check_identity(step: Step, evidence: VerifiedEvidence, measured: SegmentMeasurement) -> None:
    if evidence.kind == "tee" and evidence.model_sha256 != measured.model_sha256:
        raise CompositeError(
            "COMPOSITE_MODEL_MISMATCH",
            f"step {step.index} ({step.segment}): manifest pins model {measured.model_sha256}, "
            f"the enclave ran {evidence.model_sha256}",
        )
    if evidence.kind == "zk" and (measured.vk_sha256 is None or evidence.vk_sha256 != measured.vk_sha256):
        raise CompositeError(
            "COMPOSITE_VK_MISMATCH",
            f"step {step.index} ({step.segment}): manifest pins vk {measured.vk_sha256}, "
            f"the proof verified under {evidence.vk_sha256}",
        )


CLOCK_SKEW_MS = 5_000


def check_freshness(step: Step, issued_at_ms: int, options: ChainOptions) -> None:
    if options.max_age_s is None:
        return
    if options.at_ms is None:
        raise CompositeError("COMPOSITE_RECEIPT_STALE", "a maximum age needs a verification time")
    if issued_at_ms > options.at_ms + CLOCK_SKEW_MS:
        raise CompositeError(
            "COMPOSITE_RECEIPT_FUTURE",
            f"step {step.index} was signed at {issued_at_ms} ms, after the verification time {options.at_ms} ms",
        )
    age_ms = options.at_ms - issued_at_ms
    if age_ms > options.max_age_s * 1000:
        raise CompositeError(
            "COMPOSITE_RECEIPT_STALE",
            f"step {step.index}: expected an inference at most {options.max_age_s} s old, found {age_ms / 1000:.1f} s",
        )


def check_tee_binding(step: Step, evidence: VerifiedEvidence, options: ChainOptions) -> None:
    if evidence.nonce != step.step_nonce:
        raise CompositeError(
            "COMPOSITE_TEE_REPLAY",
            f"step {step.index} ({step.segment}): the enclave signed nonce {evidence.nonce}, this request's step "
            f"nonce is {step.step_nonce} (a receipt from another request or step)",
        )
    if evidence.issued_at_ms is None or evidence.attested_at_ms is None:
        raise CompositeError("COMPOSITE_ATTESTATION_STALE", f"step {step.index}: TEE evidence carries no timestamps")
    age_ms = evidence.issued_at_ms - evidence.attested_at_ms
    if age_ms < 0 or age_ms > options.max_attestation_age_s * 1000:
        raise CompositeError(
            "COMPOSITE_ATTESTATION_STALE",
            f"step {step.index}: expected the receipt within {options.max_attestation_age_s} s after the "
            f"attestation of its key, found {age_ms / 1000:.3f} s",
        )
    check_freshness(step, evidence.issued_at_ms, options)


def check_stated_commitments(step: Step, evidence: VerifiedEvidence) -> None:
    for side, stated, proven in (("input", step.inputs, evidence.inputs), ("output", step.outputs, evidence.outputs)):
        for name, commitment in stated.items():
            if not agree(commitment, proven.get(name)):
                raise CompositeError(
                    "COMPOSITE_STEP_COMMITMENT_MISMATCH",
                    f"step {step.index} ({step.segment}) states {side} {name!r} = {commitment}, its {evidence.kind} "
                    f"evidence proves {proven.get(name)}",
                )


def check_stated_kinds(step: Step, facts: Mapping[str, VerifiedEvidence]) -> None:
    """Agreement needs only one shared kind, so a step could state a second commitment (a SHA-256 beside
    the Poseidon hash a proof of a private tensor proved) that nothing checks: every kind a step states
    must be proven, with the same value, by a piece of its own evidence."""
    for side in ("inputs", "outputs"):
        stated: Mapping[str, Commitment] = getattr(step, side)
        for name, commitment in stated.items():
            proven = [c for e in facts.values() if (c := getattr(e, side).get(name)) is not None]
            require_proven_kinds(commitment, proven, f"step {step.index} ({step.segment}) states {side[:-1]} {name!r}")


def check_dual(
    step: Step,
    facts: Mapping[str, VerifiedEvidence],
    tensors: Mapping[str, BoundaryTensor],
    measured: SegmentMeasurement,
) -> None:
    """A ``tee+zk`` step: the enclave's signed commitments and the proof's instances must be the
    same tensors. For every input and output, each piece of evidence must agree with the boundary
    record (else the receipt, or the proof, is about another tensor: ``COMPOSITE_DUAL_TEE_MISMATCH``
    / ``COMPOSITE_DUAL_ZK_MISMATCH``), and the two must share a commitment kind with equal values
    (public: SHA-256 of the same bytes whose felts are the proof's instances; private: the same
    Poseidon hash), else ``COMPOSITE_DUAL_EVIDENCE_MISMATCH``. The enclave must have executed the
    compiled circuit the manifest pins for the segment (it signs its SHA-256), else
    ``COMPOSITE_DUAL_CIRCUIT_MISMATCH``."""
    tee, zk = facts["tee"], facts["zk"]
    pinned = measured.zk_pins.get("compiled_circuit")
    if pinned is None or tee.executed_circuit_sha256 != pinned:
        raise CompositeError(
            "COMPOSITE_DUAL_CIRCUIT_MISMATCH",
            f"step {step.index} ({step.segment}): expected the enclave to execute the compiled circuit the manifest "
            f"pins ({pinned}), it signed {tee.executed_circuit_sha256}",
        )
    for name in (*step.inputs, *step.outputs):
        record = tensors[name].commitment
        a = tee.inputs.get(name) or tee.outputs.get(name)
        b = zk.inputs.get(name) or zk.outputs.get(name)
        if not agree(record, a):
            raise CompositeError(
                "COMPOSITE_DUAL_TEE_MISMATCH",
                f"step {step.index} ({step.segment}): the receipt records {name!r} = {record}, the enclave "
                f"signed {a} (a receipt for another tensor)",
            )
        if not agree(record, b):
            raise CompositeError(
                "COMPOSITE_DUAL_ZK_MISMATCH",
                f"step {step.index} ({step.segment}): the receipt records {name!r} = {record}, the proof's "
                f"instances are {b} (a proof for another tensor)",
            )
        if a is None or b is None or not agree(a, b):
            raise CompositeError(
                "COMPOSITE_DUAL_EVIDENCE_MISMATCH",
                f"step {step.index} ({step.segment}): expected the enclave and the proof to commit to {name!r} with "
                f"a shared kind (SHA-256 for public, Poseidon for private tensors), found TEE {a}, ZK {b}",
            )
