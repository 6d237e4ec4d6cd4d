"""Merkle micro-batches: the sealer's roots and paths against an independent RFC 9162 model."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from trustdial_verifier._internal.receipts.errors import ReceiptError
from trustdial_verifier._internal.receipts.merkle import leaf_hash, root_from_path
from trustdial_verifier._internal.receipts.model import Receipt

from enclave_app.receipts.fast_encoding import encode_batch_receipts
from enclave_app.receipts.sealer import inclusion_path, tree_levels


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, recursively, over raw leaf data."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]), recursively."""
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


batches = st.lists(st.binary(max_size=16), min_size=1, max_size=40)


@given(batches)
def test_root_equals_rfc9162_tree_hash(leaves: list[bytes]) -> None:
    assert tree_levels([leaf_hash(x) for x in leaves])[-1][0] == _mth(leaves)


@given(batches, st.integers(0, 1000))
def test_inclusion_path_equals_rfc9162_path(leaves: list[bytes], pick: int) -> None:
    index = pick % len(leaves)
    assert list(inclusion_path(tree_levels([leaf_hash(x) for x in leaves]), index)) == _path(index, leaves)


@given(batches, st.integers(0, 1000))
def test_every_path_leads_back_to_the_root(leaves: list[bytes], pick: int) -> None:
    index = pick % len(leaves)
    levels = tree_levels([leaf_hash(x) for x in leaves])
    assert root_from_path(leaf_hash(leaves[index]), index, len(leaves), inclusion_path(levels, index)) == _mth(leaves)


@given(st.lists(st.binary(max_size=8), min_size=2, max_size=40, unique=True), st.integers(0, 1000))
def test_a_path_does_not_prove_a_neighbouring_index(leaves: list[bytes], pick: int) -> None:
    index = pick % len(leaves)
    other = (index + 1) % len(leaves)
    levels = tree_levels([leaf_hash(x) for x in leaves])
    try:
        root = root_from_path(leaf_hash(leaves[index]), other, len(leaves), inclusion_path(levels, index))
    except ReceiptError:
        return
    assert root != _mth(leaves)


def test_a_path_longer_than_the_tree_is_refused() -> None:
    with pytest.raises(ReceiptError) as err:
        root_from_path(leaf_hash(b"a"), 0, 1, [b"\x00" * 32])
    assert err.value.code == "RECEIPT_INCLUSION"


def test_a_path_shorter_than_the_tree_is_refused() -> None:
    with pytest.raises(ReceiptError) as err:
        root_from_path(leaf_hash(b"a"), 0, 4, [b"\x00" * 32])
    assert err.value.code == "RECEIPT_INCLUSION"


def test_an_index_outside_the_batch_is_refused() -> None:
    with pytest.raises(ReceiptError) as err:
        root_from_path(leaf_hash(b"a"), 4, 4, [b"\x00" * 32] * 2)
    assert err.value.code == "RECEIPT_INCLUSION"


@given(batches, st.binary(min_size=1, max_size=120))
def test_batch_receipts_carry_rfc9162_paths(leaves: list[bytes], seal: bytes) -> None:
    levels = tree_levels([leaf_hash(x) for x in leaves])
    expected = [Receipt(x, seal, i, tuple(_path(i, leaves))).encode() for i, x in enumerate(leaves)]
    assert encode_batch_receipts(leaves, seal, levels) == expected
