"""Merkle tree hashing for receipt micro-batches (RFC 9162 §2.1 shape, SHA-256).

leaf = SHA-256(0x00 || statement bytes); node = SHA-256(0x01 || left || right). A tree of
``size`` leaves splits at the largest power of two strictly below ``size``. A batch of one
leaf has root = leaf hash and an empty path (the per-request mode).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from trustdial_verifier._internal.receipts.errors import ReceiptError

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_SIZE = 32
MAX_BATCH_SIZE = 1 << 20


def leaf_hash(statement: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + statement).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """Recompute the root from a leaf hash and its inclusion path (RFC 9162 §2.1.3.2)."""
    if not 0 < size <= MAX_BATCH_SIZE or not 0 <= index < size:
        raise ReceiptError("RECEIPT_INCLUSION", f"expected 0 <= index < size <= {MAX_BATCH_SIZE}, found {index}/{size}")
    fn, sn = index, size - 1
    digest = leaf
    for sibling in path:
        if len(sibling) != HASH_SIZE:
            raise ReceiptError("RECEIPT_INCLUSION", f"expected {HASH_SIZE}-byte path entries, found {len(sibling)}")
        if sn == 0:
            raise ReceiptError("RECEIPT_INCLUSION", "inclusion path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            digest = node_hash(digest, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ReceiptError("RECEIPT_INCLUSION", "inclusion path is shorter than the tree is deep")
    return digest
