"""One entry point for composite receipts: parse, pin the policy, check structure, verify every
piece of step evidence with its checker, then check the links between the verified facts.

Evidence checkers are supplied per kind (``"tee"``, ``"zk"``); a kind without a checker is
refused (``COMPOSITE_EVIDENCE_UNSUPPORTED``), never skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from trustdial_verifier._internal.composite.errors import CompositeError
from trustdial_verifier._internal.composite.evidence import VerifiedEvidence
from trustdial_verifier._internal.composite.links import check_links
from trustdial_verifier._internal.composite.manifest_facts import ManifestFacts, SegmentMeasurement
from trustdial_verifier._internal.composite.options import ChainOptions
from trustdial_verifier._internal.composite.policy import VISIBILITY_PUBLIC, PipelinePolicy
from trustdial_verifier._internal.composite.receipt import CompositeReceipt, Step, TensorData, parse_receipt
from trustdial_verifier._internal.composite.report import StepReport
from trustdial_verifier._internal.composite.structure import check_structure, trusted_policy


@dataclass(frozen=True)
class StepContext:
    """What a step's evidence checker needs beyond the evidence object itself."""

    receipt: CompositeReceipt
    policy: PipelinePolicy
    manifest: ManifestFacts
    measurement: SegmentMeasurement
    public_tensors: Mapping[str, TensorData]  # values of this step's public inputs and outputs
    options: Mapping[str, Any] = field(default_factory=dict)  # e.g. at_ms, allow_dev_srs, root


class EvidenceChecker(Protocol):
    def __call__(self, step: Step, evidence: Mapping[str, Any], context: StepContext) -> VerifiedEvidence: ...


@dataclass(frozen=True)
class CompositeResult:
    pipeline: str
    policy_sha256: str
    manifest_sha256: str
    request_nonce: str
    steps: tuple[StepReport, ...]


def verify_composite(
    data: bytes,
    *,
    manifest: ManifestFacts,
    policy: PipelinePolicy | None,
    checkers: Mapping[str, EvidenceChecker],
    options: ChainOptions | None = None,
    checker_options: Mapping[str, Any] | None = None,
) -> CompositeResult:
    options = options or ChainOptions()
    receipt = parse_receipt(data)
    pinned = trusted_policy(receipt, policy, manifest)
    check_structure(receipt, pinned, manifest)
    verified: list[Mapping[str, VerifiedEvidence]] = []
    for step in receipt.steps:
        segment = pinned.segment(step.segment)
        public = {
            name: record.tensor
            for name, record in receipt.tensors.items()
            if name in (*segment.inputs, *segment.outputs)
            and record.visibility == VISIBILITY_PUBLIC
            and record.tensor is not None
        }
        context = StepContext(
            receipt=receipt,
            policy=pinned,
            manifest=manifest,
            measurement=manifest.segments[step.segment],
            public_tensors=public,
            options=checker_options or {},
        )
        facts: dict[str, VerifiedEvidence] = {}
        for kind, evidence in step.evidence.items():
            checker = checkers.get(kind)
            if checker is None:
                raise CompositeError(
                    "COMPOSITE_EVIDENCE_UNSUPPORTED",
                    f"step {step.index} ({step.segment}) carries {kind} evidence; no {kind} checker is available",
                )
            result = checker(step, evidence, context)
            if result.kind != kind:
                raise CompositeError("COMPOSITE_EVIDENCE_UNSUPPORTED", f"the {kind} checker reported {result.kind}")
            facts[kind] = result
        verified.append(facts)
    reports = check_links(receipt, pinned, manifest, verified, options)
    return CompositeResult(
        pipeline=receipt.pipeline,
        policy_sha256=receipt.policy_sha256,
        manifest_sha256=receipt.manifest_sha256,
        request_nonce=receipt.request_nonce,
        steps=tuple(reports),
    )
