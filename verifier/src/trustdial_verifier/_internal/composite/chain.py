"""The composite checks that sit above per-step evidence: policy binding, step order, trust
modes (no downgrade), request binding of every step, model identities against the signed
manifest, and the commitment links between steps.

Inputs are the parsed receipt, the trusted policy and manifest facts, and for every step the
facts its evidence *proved* (:class:`VerifiedEvidence`, produced only by the evidence checkers
after signatures and proofs verified). Commitments that a receipt merely states are never
trusted; they must equal what the evidence proved.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trustdial_verifier._internal.composite.errors import CompositeError, PolicyFileError
from trustdial_verifier._internal.composite.policy import (
    MODE_EVIDENCE,
    MODE_TEE_ZK,
    VISIBILITY_PRIVATE,
    VISIBILITY_PUBLIC,
    PipelinePolicy,
    canonical_policy,
    mode_satisfies,
    policy_from_mapping,
    policy_sha256,
)
from trustdial_verifier._internal.composite.receipt import BoundaryTensor, Commitment, CompositeReceipt, Step
from trustdial_verifier._internal.composite.tensor_commitment import tensor_sha256

STEP_NONCE_DOMAIN = b"trustdial.composite-step/1\x00"
DEFAULT_MAX_ATTESTATION_AGE_S = 3 * 3600


@dataclass(frozen=True)
class SegmentMeasurement:
    """What the signed measurement manifest pins for one pipeline segment."""

    model_sha256: str
    vk_sha256: str | None = None
    zk_pins: Mapping[str, str] = field(default_factory=dict)  # artifact role -> sha256 (vk, settings, srs, ...)


@dataclass(frozen=True)
class ManifestFacts:
    """The parts of a verified measurement manifest the composite checks use."""

    sha256: str
    segments: Mapping[str, SegmentMeasurement]
    policy_sha256s: frozenset[str] = frozenset()
    pcrs: Mapping[str, str | None] = field(default_factory=dict)  # "PCR0" -> lowercase hex


@dataclass(frozen=True)
class VerifiedEvidence:
    """What one piece of step evidence proved, after its signature or proof verified."""

    kind: str  # "tee" | "zk"
    inputs: Mapping[str, Commitment]
    outputs: Mapping[str, Commitment]
    model_sha256: str | None = None  # tee: the model file the enclave ran
    vk_sha256: str | None = None  # zk: the verifying key the proof verified under
    nonce: str | None = None  # tee: the request nonce the enclave signed
    issued_at_ms: int | None = None  # tee: enclave timestamp of the receipt
    attested_at_ms: int | None = None  # tee: timestamp of the attestation document binding the key
    executed_circuit_sha256: str | None = None  # tee: the compiled ezkl circuit the enclave executed, if it signed one
    # tensor -> the ezkl scale its Poseidon commitment quantized at (zk: the pinned settings; tee: the signed
    # poseidon_scale). Equal Poseidon hashes are equal felts; only at equal scales are they equal values.
    poseidon_scales: Mapping[str, int] = field(default_factory=dict)
    prover: str = ""  # who vouches: receipt key + enclave PCR0, or the vk
    evidence_bytes: int = 0


@dataclass(frozen=True)
class EvidenceReport:
    """One verified piece of a step's evidence, for people: what it proved and who vouches."""

    kind: str
    proven: str
    by: str
    evidence_bytes: int


@dataclass(frozen=True)
class StepReport:
    index: int
    segment: str
    mode: str
    required_mode: str
    reason: str
    proven_by: tuple[str, ...]
    seconds: float | None
    evidence_bytes: int
    evidence: tuple[EvidenceReport, ...] = ()


@dataclass(frozen=True)
class ChainOptions:
    """``max_attestation_age_s``: how long after its key's attestation a TEE receipt may be signed.
    ``at_ms`` + ``max_age_s``: the verification time and how old (by enclave clock) the inference
    may be then; without ``max_age_s`` the receipt's age is not limited (auditing old evidence).
    ``request_nonce`` (64 lowercase hex digits): the nonce the caller sent; the receipt must state it
    and at least one enclave step must have signed a step nonce derived from it (proofs sign none),
    else an earlier genuine receipt could be replayed as the answer to this request."""

    max_attestation_age_s: int = DEFAULT_MAX_ATTESTATION_AGE_S
    at_ms: int | None = None
    max_age_s: int | None = None
    request_nonce: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def derive_step_nonce(request_nonce: str, policy_hash: str, index: int, segment: str) -> str:
    """The nonce a step's TEE receipt must carry: binds it to this request, policy and position."""
    material = (
        STEP_NONCE_DOMAIN
        + bytes.fromhex(request_nonce)
        + bytes.fromhex(policy_hash)
        + struct.pack(">I", index)
        + segment.encode("utf-8")
    )
    return hashlib.sha256(material).hexdigest()


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
            _check_identity(step, evidence, measured)
            if evidence.kind == "tee":
                _check_tee_binding(step, evidence, options)
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
            _check_dual(step, facts, receipt.tensors, measured)
        for evidence in facts.values():
            _check_stated_commitments(step, evidence)
        _check_stated_kinds(step, facts)
        segment = policy.segment(step.segment)
        reports.append(
            StepReport(
                index=step.index,
                segment=step.segment,
                mode=step.mode,
                required_mode=segment.mode,
                reason=segment.reason,
                proven_by=tuple(facts[k].prover for k in sorted(facts)),
                seconds=_seconds(step.cost),
                evidence_bytes=sum(e.evidence_bytes for e in facts.values()),
                evidence=tuple(
                    EvidenceReport(
                        kind=k, proven=_proven(facts[k]), by=facts[k].prover, evidence_bytes=facts[k].evidence_bytes
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


def _check_identity(step: Step, evidence: VerifiedEvidence, measured: SegmentMeasurement) -> None:
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


def _check_freshness(step: Step, issued_at_ms: int, options: ChainOptions) -> None:
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


def _check_tee_binding(step: Step, evidence: VerifiedEvidence, options: ChainOptions) -> None:
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
    _check_freshness(step, evidence.issued_at_ms, options)


def _check_stated_commitments(step: Step, evidence: VerifiedEvidence) -> None:
    for side, stated, proven in (("input", step.inputs, evidence.inputs), ("output", step.outputs, evidence.outputs)):
        for name, commitment in stated.items():
            if not _agree(commitment, proven.get(name)):
                raise CompositeError(
                    "COMPOSITE_STEP_COMMITMENT_MISMATCH",
                    f"step {step.index} ({step.segment}) states {side} {name!r} = {commitment}, its {evidence.kind} "
                    f"evidence proves {proven.get(name)}",
                )


def _check_stated_kinds(step: Step, facts: Mapping[str, VerifiedEvidence]) -> None:
    """Agreement needs only one shared kind, so a step could state a second commitment (a SHA-256 beside
    the Poseidon hash a proof of a private tensor proved) that nothing checks: every kind a step states
    must be proven, with the same value, by a piece of its own evidence."""
    for side in ("inputs", "outputs"):
        stated: Mapping[str, Commitment] = getattr(step, side)
        for name, commitment in stated.items():
            proven = [c for e in facts.values() if (c := getattr(e, side).get(name)) is not None]
            _require_proven_kinds(commitment, proven, f"step {step.index} ({step.segment}) states {side[:-1]} {name!r}")


def _require_proven_kinds(commitment: Commitment, proven: Sequence[Commitment], what: str) -> None:
    for kind in ("sha256", "poseidon"):
        value = getattr(commitment, kind)
        if value is not None and all(getattr(p, kind) != value for p in proven):
            raise CompositeError(
                "COMPOSITE_COMMITMENT_UNPROVEN",
                f"{what} with a {kind} commitment {value} that no piece of evidence proves "
                f"(proven: {[getattr(p, kind) for p in proven]})",
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


def _check_dual(
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
        if not _agree(record, a):
            raise CompositeError(
                "COMPOSITE_DUAL_TEE_MISMATCH",
                f"step {step.index} ({step.segment}): the receipt records {name!r} = {record}, the enclave "
                f"signed {a} (a receipt for another tensor)",
            )
        if not _agree(record, b):
            raise CompositeError(
                "COMPOSITE_DUAL_ZK_MISMATCH",
                f"step {step.index} ({step.segment}): the receipt records {name!r} = {record}, the proof's "
                f"instances are {b} (a proof for another tensor)",
            )
        if a is None or b is None or not _agree(a, b):
            raise CompositeError(
                "COMPOSITE_DUAL_EVIDENCE_MISMATCH",
                f"step {step.index} ({step.segment}): expected the enclave and the proof to commit to {name!r} with "
                f"a shared kind (SHA-256 for public, Poseidon for private tensors), found TEE {a}, ZK {b}",
            )


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
                if not _agree(record.commitment, evidence.outputs.get(name)):
                    raise CompositeError(
                        "COMPOSITE_OUTPUT_LINK_MISMATCH",
                        f"tensor {name!r}: the receipt records {record.commitment}, step {producer.name!r} "
                        f"({evidence.kind}) proves it produced {evidence.outputs.get(name)}",
                    )
        for segment in policy.segments:
            if name not in segment.inputs:
                continue
            for evidence in verified[position[segment.name]].values():
                if not _agree(record.commitment, evidence.inputs.get(name)):
                    raise CompositeError(
                        "COMPOSITE_INPUT_LINK_MISMATCH",
                        f"tensor {name!r}: the receipt records {record.commitment}, step {segment.name!r} "
                        f"({evidence.kind}) proves it consumed {evidence.inputs.get(name)}",
                    )
        _require_proven_kinds(record.commitment, touching, f"the receipt records tensor {name!r}")
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
                scale = facts["zk"].poseidon_scales.get(name)  # it executed the step's pinned circuit (_check_dual)
            pieces.append((segment.name, evidence, getattr(evidence, side).get(name), scale))

    def linked(a: int, b: int, *, scales: bool) -> bool:
        (_, _, commitment_a, scale_a), (_, _, commitment_b, scale_b) = pieces[a], pieces[b]
        if commitment_a is None or commitment_b is None or not _agree(commitment_a, commitment_b):
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


def _agree(a: Commitment, b: Commitment | None) -> bool:
    """Two commitments name the same tensor: they share at least one kind, and every shared kind is equal."""
    if b is None:
        return False
    shared = 0
    for left, right in ((a.sha256, b.sha256), (a.poseidon, b.poseidon)):
        if left is not None and right is not None:
            if left != right:
                return False
            shared += 1
    return shared > 0


def _kinds(commitments: Mapping[str, Commitment]) -> str:
    parts = []
    for name, c in commitments.items():
        kinds = [k for k, v in (("sha256", c.sha256), ("poseidon", c.poseidon)) if v is not None]
        parts.append(f"{name} [{'+'.join(kinds)}]")
    return ", ".join(parts)


def _proven(evidence: VerifiedEvidence) -> str:
    """What a verified piece of evidence established, in one line."""
    flow = f"{_kinds(evidence.inputs)} -> {_kinds(evidence.outputs)}"
    if evidence.kind == "tee":
        return f"pinned enclave ran model {(evidence.model_sha256 or '?')[:12]} on {flow} (signed)"
    if evidence.kind == "zk":
        return f"pinned circuit (vk {(evidence.vk_sha256 or '?')[:12]}) maps {flow} (proof + instances)"
    return f"{evidence.kind}: {flow}"


def _seconds(cost: Mapping[str, Any]) -> float | None:
    """The stated (unverified) cost; its shape and range were checked when the receipt was parsed."""
    value = cost.get("seconds")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def policy_document(policy: PipelinePolicy) -> dict[str, Any]:
    """The policy object a composite receipt embeds."""
    return canonical_policy(policy)
