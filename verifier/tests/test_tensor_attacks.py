"""Attacks on the tensor commitment: every hostile shape is a typed TENSOR_* rejection, and distinct
tensor sets never share a commitment."""

from __future__ import annotations

import hashlib
import struct

import pytest
from trustdial_verifier._internal.tensors import MAGIC, Tensor, TensorError, commit_tensors


@pytest.mark.parametrize("shape", [(0, 1 << 64), (1 << 64, 0), (0, 1 << 70)], ids=["2^64-a", "2^64-b", "2^70"])
def test_dimension_beyond_u64_is_a_typed_rejection(shape: tuple[int, ...]) -> None:
    with pytest.raises(TensorError) as caught:
        Tensor("float32", shape, b"")
    assert caught.value.code == "TENSOR_SHAPE"


def test_largest_u64_dimension_of_an_empty_tensor_commits_per_the_spec() -> None:
    tensor = Tensor("uint8", (0, (1 << 64) - 1), b"")
    expected = hashlib.sha256(
        MAGIC
        + struct.pack(">I", 1)
        + struct.pack(">I", 1)
        + b"t"
        + struct.pack(">B", 5)
        + b"uint8"
        + struct.pack(">IQQ", 2, 0, (1 << 64) - 1)
        + struct.pack(">Q", 0)
    ).digest()
    assert commit_tensors({"t": tensor}) == expected


def test_same_bytes_under_another_dtype_commit_differently() -> None:
    data = bytes(range(8))
    assert commit_tensors({"t": Tensor("int64", (1,), data)}) != commit_tensors({"t": Tensor("float64", (1,), data)})


def test_same_bytes_under_another_shape_commit_differently() -> None:
    data = bytes(range(8))
    assert commit_tensors({"t": Tensor("uint8", (2, 4), data)}) != commit_tensors({"t": Tensor("uint8", (4, 2), data)})


def test_name_and_data_boundary_cannot_be_shifted() -> None:
    a = {"ab": Tensor("uint8", (1,), b"c"), "d": Tensor("uint8", (0,), b"")}
    b = {"a": Tensor("uint8", (1,), b"b"), "cd": Tensor("uint8", (0,), b"")}
    assert commit_tensors(a) != commit_tensors(b)


def test_bool_tensor_with_a_byte_other_than_0_or_1_is_rejected() -> None:
    with pytest.raises(TensorError) as caught:
        Tensor("bool", (3,), b"\x01\x02\x00")
    assert caught.value.code == "TENSOR_BOOL"
