"""The composite checks decidable before any evidence is verified: which policy binds the receipt, the manifest and
policy pins, step order and modes (no downgrade), evidence sets, step nonces, tensor sets and boundary records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from trustdial_verifier._internal.composite.errors import CompositeError, PolicyFileError
from trustdial_verifier._internal.composite.manifest_facts import ManifestFacts
from trustdial_verifier._internal.composite.nonce import derive_step_nonce
from trustdial_verifier._internal.composite.policy import (
    MODE_EVIDENCE,
    MODE_TEE_ZK,
    VISIBILITY_PRIVATE,
    VISIBILITY_PUBLIC,
    PipelinePolicy,
    mode_satisfies,
    policy_from_mapping,
    policy_sha256,
)
from trustdial_verifier._internal.composite.receipt import BoundaryTensor, CompositeReceipt, Step
from trustdial_verifier._internal.composite.tensor_commitment import tensor_sha256


def trusted_policy(receipt: CompositeReceipt, policy: PipelinePolicy | None, manifest: ManifestFacts) -> PipelinePolicy:
    """Establish which policy binds this receipt; refuse any policy nobody pinned."""
    try:
        embedded = policy_from_mapping(receipt.policy)
    except PolicyFileError as err:
        raise CompositeError("COMPOSITE_POLICY_INVALID", f"the embedded policy is not valid: {err.reason}") from err
    if policy_sha256(embedded) != receipt.policy_sha256:
        raise CompositeError(
            "COMPOSITE_POLICY_HASH_MISMATCH",
            f"expected policy_sha256 {policy_sha256(embedded)} (hash of the embedded policy), "
            f"found {receipt.policy_sha256}",
        )
    if policy is not None:
        expected = policy_sha256(policy)
        if expected != receipt.policy_sha256:
            raise CompositeError(
                "COMPOSITE_POLICY_MISMATCH",
                f"expected the policy given to the verifier (sha256 {expected}), found {receipt.policy_sha256}",
            )
        return policy
    if receipt.policy_sha256 not in manifest.policy_sha256s:
        raise CompositeError(
            "COMPOSITE_POLICY_UNPINNED",
            f"no --policy given and the manifest pins {sorted(manifest.policy_sha256s) or 'no policies'}, "
            f"not {receipt.policy_sha256}",
        )
    return embedded


def check_structure(receipt: CompositeReceipt, policy: PipelinePolicy, manifest: ManifestFacts) -> None:
    """Everything decidable before any evidence is verified: manifest, steps, modes, nonces, tensors."""
    if receipt.manifest_sha256 != manifest.sha256:
        raise CompositeError(
            "COMPOSITE_MANIFEST_MISMATCH",
            f"expected manifest sha256 {manifest.sha256}, the receipt was made under {receipt.manifest_sha256}",
        )
    if manifest.policy_sha256s and receipt.policy_sha256 not in manifest.policy_sha256s:
        raise CompositeError(
            "COMPOSITE_POLICY_UNPINNED",
            f"the manifest pins policy {sorted(manifest.policy_sha256s)}, the receipt follows {receipt.policy_sha256}: "
            "a policy given to the verifier does not void the signed manifest's pin",
        )
    if receipt.pipeline != policy.name:
        raise CompositeError(
            "COMPOSITE_PIPELINE_MISMATCH", f"expected pipeline {policy.name!r}, found {receipt.pipeline!r}"
        )
    _check_step_order(receipt.steps, policy)
    for step in receipt.steps:
        segment = policy.segment(step.segment)
        if segment.mode == MODE_TEE_ZK:
            _check_dual_present(step)
        if not mode_satisfies(step.mode, segment.mode):
            raise CompositeError(
                "COMPOSITE_MODE_DOWNGRADE",
                f"step {step.index} ({step.segment}): policy demands {segment.mode}, the step ran as {step.mode}",
            )
        if set(step.evidence) != MODE_EVIDENCE[step.mode]:
            raise CompositeError(
                "COMPOSITE_EVIDENCE_MISSING",
                f"step {step.index} ({step.segment}): mode {step.mode} needs evidence "
                f"{sorted(MODE_EVIDENCE[step.mode])}, found {sorted(step.evidence)}",
            )
        expected_nonce = derive_step_nonce(receipt.request_nonce, receipt.policy_sha256, step.index, step.segment)
        if step.step_nonce != expected_nonce:
            raise CompositeError(
                "COMPOSITE_STEP_NONCE_INVALID",
                f"step {step.index}: expected step nonce {expected_nonce}, found {step.step_nonce}",
            )
        if set(step.inputs) != set(segment.inputs) or set(step.outputs) != set(segment.outputs):
            raise CompositeError(
                "COMPOSITE_STEP_TENSORS",
                f"step {step.index} ({step.segment}): expected inputs {list(segment.inputs)} and outputs "
                f"{list(segment.outputs)}, found {sorted(step.inputs)} and {sorted(step.outputs)}",
            )
        if step.segment not in manifest.segments:
            raise CompositeError(
                "COMPOSITE_SEGMENT_UNMEASURED", f"the manifest pins no model for segment {step.segment!r}"
            )
    _check_boundaries(receipt.tensors, policy)


def _check_step_order(steps: Sequence[Step], policy: PipelinePolicy) -> None:
    expected = [s.name for s in policy.segments]
    found = [s.segment for s in steps]
    unknown = [name for name in found if name not in expected]
    if unknown:
        raise CompositeError("COMPOSITE_SEGMENT_UNKNOWN", f"steps name segments the policy does not have: {unknown}")
    if len(set(found)) != len(found):
        raise CompositeError("COMPOSITE_STEP_DUPLICATE", f"expected each segment once, found steps {found}")
    missing = [name for name in expected if name not in found]
    if missing:
        raise CompositeError("COMPOSITE_STEP_MISSING", f"expected steps for {expected}, missing {missing}")
    if found != expected:
        raise CompositeError("COMPOSITE_STEP_ORDER", f"expected steps in policy order {expected}, found {found}")
    for position, step in enumerate(steps):
        if step.index != position:
            raise CompositeError("COMPOSITE_STEP_INDEX", f"expected step index {position}, found {step.index}")


def _check_boundaries(tensors: Mapping[str, BoundaryTensor], policy: PipelinePolicy) -> None:
    if set(tensors) != set(policy.visibility):
        raise CompositeError(
            "COMPOSITE_TENSOR_SET",
            f"expected boundary records for {sorted(policy.visibility)}, found {sorted(tensors)}",
        )
    for name, record in tensors.items():
        wanted = policy.visibility[name]
        if record.visibility != wanted:
            raise CompositeError(
                "COMPOSITE_VISIBILITY_MISMATCH",
                f"tensor {name!r}: policy says {wanted}, receipt says {record.visibility}",
            )
        if wanted == VISIBILITY_PRIVATE and record.tensor is not None:
            raise CompositeError(
                "COMPOSITE_VISIBILITY_MISMATCH", f"tensor {name!r} is private but the receipt carries its values"
            )
        if wanted == VISIBILITY_PUBLIC:
            if record.tensor is None or record.commitment.sha256 is None:
                raise CompositeError(
                    "COMPOSITE_VISIBILITY_MISMATCH", f"tensor {name!r} is public: expected its values and SHA-256"
                )
            actual = tensor_sha256(name, record.tensor)
            if actual != record.commitment.sha256:
                raise CompositeError(
                    "COMPOSITE_TENSOR_COMMITMENT_MISMATCH",
                    f"tensor {name!r}: values hash to {actual}, the receipt states {record.commitment.sha256}",
                )


def _check_dual_present(step: Step) -> None:
    """A segment the policy runs as ``tee+zk`` needs both an enclave receipt and a proof; a step
    missing either (whatever mode it claims) is a downgrade with its own code."""
    if "zk" not in step.evidence:
        raise CompositeError(
            "COMPOSITE_DUAL_ZK_MISSING",
            f"step {step.index} ({step.segment}): the policy demands tee+zk, the step carries no zk proof "
            f"(evidence {sorted(step.evidence)})",
        )
    if "tee" not in step.evidence:
        raise CompositeError(
            "COMPOSITE_DUAL_TEE_MISSING",
            f"step {step.index} ({step.segment}): the policy demands tee+zk, the step carries no enclave receipt "
            f"(evidence {sorted(step.evidence)})",
        )
