"""The checks over every step's verified facts together (:func:`check_links`): each step against the manifest and the
request, time order, and the commitment links that make the steps one computation over the same tensors.

Commitments that a receipt merely states are never trusted; they must equal what the evidence proved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from trustdial_verifier._internal.composite.agreement import agree, require_proven_kinds
from trustdial_verifier._internal.composite.errors import CompositeError
from trustdial_verifier._internal.composite.evidence import VerifiedEvidence
from trustdial_verifier._internal.composite.manifest_facts import ManifestFacts
from trustdial_verifier._internal.composite.options import ChainOptions
from trustdial_verifier._internal.composite.policy import PipelinePolicy
from trustdial_verifier._internal.composite.receipt import Commitment, CompositeReceipt
from trustdial_verifier._internal.composite.report import EvidenceReport, StepReport, proven_summary, stated_seconds
from trustdial_verifier._internal.composite.step_checks import (
    check_dual,
    check_identity,
    check_stated_commitments,
    check_stated_kinds,
    check_tee_binding,
)


def check_links(
    receipt: CompositeReceipt,
    policy: PipelinePolicy,
    manifest: ManifestFacts,
    verified: Sequence[Mapping[str, VerifiedEvidence]],
    options: ChainOptions,
) -> list[StepReport]:
    """Check the verified facts of every step against the manifest, the request and each other."""
    if len(verified) != len(receipt.steps):
        raise CompositeError("COMPOSITE_EVIDENCE_MISSING", "expected verified evidence for every step")
    if options.request_nonce is not None and options.request_nonce != receipt.request_nonce:
        raise CompositeError(
            "COMPOSITE_NONCE_MISMATCH",
            f"expected the receipt of request nonce {options.request_nonce}, found {receipt.request_nonce} "
            "(another request's receipt)",
        )
    reports: list[StepReport] = []
    last_issued = -1
    for step, facts in zip(receipt.steps, verified, strict=True):
        if set(facts) != set(step.evidence):
            raise CompositeError(
                "COMPOSITE_EVIDENCE_MISSING", f"step {step.index}: not every piece of evidence verified"
            )
        measured = manifest.segments[step.segment]
        for evidence in facts.values():
            check_identity(step, evidence, measured)
            if evidence.kind == "tee":
                check_tee_binding(step, evidence, options)
                if evidence.issued_at_ms is None:
                    raise CompositeError(
                        "COMPOSITE_MALFORMED", f"step {step.index}: tee evidence without an issue time"
                    )
                if evidence.issued_at_ms < last_issued:
                    raise CompositeError(
                        "COMPOSITE_STEP_TIME_ORDER",
                        f"step {step.index} was signed at {evidence.issued_at_ms} ms, before the previous "
                        f"TEE step ({last_issued} ms)",
                    )
                last_issued = evidence.issued_at_ms
        if len(facts) > 1:
            check_dual(step, facts, receipt.tensors, measured)
        for evidence in facts.values():
            check_stated_commitments(step, evidence)
        check_stated_kinds(step, facts)
        segment = policy.segment(step.segment)
        reports.append(
            StepReport(
                index=step.index,
                segment=step.segment,
                mode=step.mode,
                required_mode=segment.mode,
                reason=segment.reason,
                proven_by=tuple(facts[k].prover for k in sorted(facts)),
                seconds=stated_seconds(step.cost),
                evidence_bytes=sum(e.evidence_bytes for e in facts.values()),
                evidence=tuple(
                    EvidenceReport(
                        kind=k,
                        proven=proven_summary(facts[k]),
                        by=facts[k].prover,
                        evidence_bytes=facts[k].evidence_bytes,
                    )
                    for k in sorted(facts)
                ),
            )
        )
    if options.request_nonce is not None and last_issued < 0:
        raise CompositeError(
            "COMPOSITE_NONCE_UNBOUND",
            "no step carries enclave evidence, the only evidence that signs the request nonce (proofs sign none): "
            "nothing binds this receipt to the request",
        )
    if options.max_age_s is not None and last_issued < 0:
        raise CompositeError(
            "COMPOSITE_RECEIPT_UNDATED",
            f"expected an inference at most {options.max_age_s} s old; no step carries enclave evidence, the only "
            "evidence with a time (proofs carry none), so the age cannot be checked",
        )
    _check_tensor_links(receipt, policy, verified)
    return reports


def _check_tensor_links(
    receipt: CompositeReceipt, policy: PipelinePolicy, verified: Sequence[Mapping[str, VerifiedEvidence]]
) -> None:
    position = {step.segment: i for i, step in enumerate(receipt.steps)}
    for name, record in receipt.tensors.items():
        touching = [
            commitment
            for segment in policy.segments
            if name in segment.inputs or name in segment.outputs
            for evidence in verified[position[segment.name]].values()
            for commitment in (evidence.inputs.get(name), evidence.outputs.get(name))
            if commitment is not None
        ]
        producer = policy.producer(name)
        if producer is not None:
            for evidence in verified[position[producer.name]].values():
                if not agree(record.commitment, evidence.outputs.get(name)):
                    raise CompositeError(
                        "COMPOSITE_OUTPUT_LINK_MISMATCH",
                        f"tensor {name!r}: the receipt records {record.commitment}, step {producer.name!r} "
                        f"({evidence.kind}) proves it produced {evidence.outputs.get(name)}",
                    )
        for segment in policy.segments:
            if name not in segment.inputs:
                continue
            for evidence in verified[position[segment.name]].values():
                if not agree(record.commitment, evidence.inputs.get(name)):
                    raise CompositeError(
                        "COMPOSITE_INPUT_LINK_MISMATCH",
                        f"tensor {name!r}: the receipt records {record.commitment}, step {segment.name!r} "
                        f"({evidence.kind}) proves it consumed {evidence.inputs.get(name)}",
                    )
        require_proven_kinds(record.commitment, touching, f"the receipt records tensor {name!r}")
        _check_pairwise(name, policy, position, verified)


def _check_pairwise(
    name: str,
    policy: PipelinePolicy,
    position: Mapping[str, int],
    verified: Sequence[Mapping[str, VerifiedEvidence]],
) -> None:
    """Agreement with the boundary record is not transitive: a producer that proved only the SHA-256
    and a consumer that proved only the Poseidon hash each agree with a record stating both, while
    nothing shows they are the same tensor. So the pieces of evidence that produce or consume
    ``name`` must be linked to each other, directly or through a piece that proved both kinds (one
    signer vouching both are of one tensor). Two pieces are linked when they share the SHA-256 (the
    same bytes), or the Poseidon hash quantized at the same scale: equal hashes are equal felts, and
    felts read at another scale are other values."""
    pieces: list[tuple[str, VerifiedEvidence, Commitment | None, int | None]] = []
    for segment in policy.segments:
        side = "outputs" if name in segment.outputs else "inputs" if name in segment.inputs else None
        if side is None:
            continue
        facts = verified[position[segment.name]]
        for evidence in facts.values():
            scale = evidence.poseidon_scales.get(name)
            if evidence.kind == "tee" and evidence.executed_circuit_sha256 is not None and "zk" in facts:
                scale = facts["zk"].poseidon_scales.get(name)  # it executed the step's pinned circuit (check_dual)
            pieces.append((segment.name, evidence, getattr(evidence, side).get(name), scale))

    def linked(a: int, b: int, *, scales: bool) -> bool:
        (_, _, commitment_a, scale_a), (_, _, commitment_b, scale_b) = pieces[a], pieces[b]
        if commitment_a is None or commitment_b is None or not agree(commitment_a, commitment_b):
            return False
        same_bytes = commitment_a.sha256 is not None and commitment_b.sha256 is not None
        return same_bytes or not scales or (scale_a is not None and scale_a == scale_b)

    for scales in (False, True):
        reached = {0}
        frontier = [0]
        while frontier:
            a = frontier.pop()
            for b in range(len(pieces)):
                if b not in reached and linked(a, b, scales=scales):
                    reached.add(b)
                    frontier.append(b)
        if len(reached) < len(pieces):
            found = ", ".join(f"step {step!r} ({e.kind}) proves {c} at scale {k}" for step, e, c, k in pieces)
            if scales:
                raise CompositeError(
                    "COMPOSITE_LINK_SCALE_MISMATCH",
                    f"tensor {name!r}: evidence linked only by Poseidon hashes quantized at different (or unsigned) "
                    f"scales, the same felts but not the same values: {found}",
                )
            raise CompositeError(
                "COMPOSITE_LINK_UNPROVEN",
                f"tensor {name!r}: no commitment kind links every piece of evidence, nothing shows they are the "
                f"same tensor: {found}",
            )
