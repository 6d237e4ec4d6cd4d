"""Micro-batch sealing: many statements, one signature.

Statements are appended in sequence order; :meth:`Sealer.seal` builds the Merkle tree
(RFC 9162 shape: pairing bottom-up, a lone last node is carried up unchanged), signs the
batch root once and returns one self-contained :class:`Receipt` per statement. A batch of
one is the per-request mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import sha256

from trustdial_verifier.unstable.receipts import BatchRoot, Receipt, leaf_hash

from enclave_app.receipts.key import ReceiptKey


def tree_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """All levels of the tree, leaves first, root level last."""
    levels = [leaves]
    while len(levels[-1]) > 1:
        below = levels[-1]
        above = [sha256(b"\x01" + below[i] + below[i + 1]).digest() for i in range(0, len(below) - 1, 2)]  # node_hash
        if len(below) % 2:
            above.append(below[-1])
        levels.append(above)
    return levels


def inclusion_path(levels: list[list[bytes]], index: int) -> tuple[bytes, ...]:
    path = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        index >>= 1
    return tuple(path)


@dataclass
class Sealer:
    key: ReceiptKey
    attestation_digest: bytes
    pending: list[bytes] = field(default_factory=list)

    def add(self, statement: bytes) -> int:
        """Queue an encoded statement; returns its index in the current batch."""
        self.pending.append(statement)
        return len(self.pending) - 1

    def seal(self) -> list[Receipt]:
        """Sign the pending batch; one receipt per queued statement, in order."""
        statements, self.pending = self.pending, []
        if not statements:
            return []
        levels = tree_levels([leaf_hash(s) for s in statements])
        root = BatchRoot(root=levels[-1][0], size=len(statements), attestation=self.attestation_digest)
        seal = self.key.seal(root.encode())
        return [
            Receipt(statement=s, seal=seal, index=i, path=inclusion_path(levels, i)) for i, s in enumerate(statements)
        ]
