"""The per-step report of a verified composite receipt, for people: mode, who vouches, what each piece of evidence
proved, the stated cost."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trustdial_verifier._internal.composite.evidence import VerifiedEvidence
from trustdial_verifier._internal.composite.receipt import Commitment


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


def kinds(commitments: Mapping[str, Commitment]) -> str:
    parts = []
    for name, c in commitments.items():
        kinds = [k for k, v in (("sha256", c.sha256), ("poseidon", c.poseidon)) if v is not None]
        parts.append(f"{name} [{'+'.join(kinds)}]")
    return ", ".join(parts)


def proven_summary(evidence: VerifiedEvidence) -> str:
    """What a verified piece of evidence established, in one line."""
    flow = f"{kinds(evidence.inputs)} -> {kinds(evidence.outputs)}"
    if evidence.kind == "tee":
        return f"pinned enclave ran model {(evidence.model_sha256 or '?')[:12]} on {flow} (signed)"
    if evidence.kind == "zk":
        return f"pinned circuit (vk {(evidence.vk_sha256 or '?')[:12]}) maps {flow} (proof + instances)"
    return f"{evidence.kind}: {flow}"


def stated_seconds(cost: Mapping[str, Any]) -> float | None:
    """The stated (unverified) cost; its shape and range were checked when the receipt was parsed."""
    value = cost.get("seconds")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
