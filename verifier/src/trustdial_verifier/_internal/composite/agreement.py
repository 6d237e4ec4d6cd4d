"""When two commitments name the same tensor, and when a stated commitment is proven by some piece of evidence."""

from __future__ import annotations

from collections.abc import Sequence

from trustdial_verifier._internal.composite.errors import CompositeError
from trustdial_verifier._internal.composite.receipt import Commitment


def agree(a: Commitment, b: Commitment | None) -> bool:
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


def require_proven_kinds(commitment: Commitment, proven: Sequence[Commitment], what: str) -> None:
    for kind in ("sha256", "poseidon"):
        value = getattr(commitment, kind)
        if value is not None and all(getattr(p, kind) != value for p in proven):
            raise CompositeError(
                "COMPOSITE_COMMITMENT_UNPROVEN",
                f"{what} with a {kind} commitment {value} that no piece of evidence proves "
                f"(proven: {[getattr(p, kind) for p in proven]})",
            )
