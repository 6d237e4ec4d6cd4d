"""Canonical tensor encoding and commitment (docs/receipts.md §2) against a hand-written vector."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from trustdial_verifier._internal.tensors import Tensor, TensorError, commit_tensors, encode_tensors

# Written out by hand from the spec, not produced by the code under test.
VECTOR_HEX = (
    "74727573746469616c2f74656e736f72732f763100"  # "trustdial/tensors/v1\0"
    "00000002"  # two tensors
    "00000001" "61" "07" "666c6f61743332" "00000000" "0000000000000004" "0000803f"  # a: float32 scalar 1.0
    "00000001" "62" "04" "696e7438" "00000001" "0000000000000002" "0000000000000002" "01fe"  # b: int8 [2] = [1, -2]
)  # fmt: skip
VECTOR_TENSORS = {
    "b": Tensor("int8", (2,), b"\x01\xfe"),
    "a": Tensor("float32", (), b"\x00\x00\x80\x3f"),
}


def test_encoding_matches_the_hand_written_vector() -> None:
    assert encode_tensors(VECTOR_TENSORS).hex() == VECTOR_HEX


def test_commitment_is_sha256_of_the_vector() -> None:
    assert commit_tensors(VECTOR_TENSORS) == hashlib.sha256(bytes.fromhex(VECTOR_HEX)).digest()


def test_from_array_stores_little_endian_c_order() -> None:
    big_endian_fortran = np.asfortranarray(np.array([[1, 2], [3, 4]], dtype=">i4"))
    tensor = Tensor.from_array(big_endian_fortran)
    assert tensor.dtype == "int32"
    assert tensor.data == bytes.fromhex("01000000020000000300000004000000")


def test_names_are_ordered_by_utf8_bytes_not_insertion() -> None:
    one = Tensor("uint8", (1,), b"\x07")
    assert encode_tensors({"é": one, "z": one}) == encode_tensors({"z": one, "é": one})
    assert encode_tensors({"é": one, "z": one}).index(b"z") < encode_tensors({"z": one, "é": one}).index("é".encode())


def test_data_length_must_match_shape() -> None:
    with pytest.raises(TensorError) as err:
        Tensor("float32", (2, 2), b"\x00" * 12)
    assert err.value.code == "TENSOR_SIZE"


def test_unknown_dtype_is_refused() -> None:
    with pytest.raises(TensorError) as err:
        Tensor("complex64", (1,), b"\x00" * 8)
    assert err.value.code == "TENSOR_DTYPE"


def test_bool_bytes_must_be_zero_or_one() -> None:
    with pytest.raises(TensorError) as err:
        Tensor("bool", (2,), b"\x01\x02")
    assert err.value.code == "TENSOR_BOOL"


@given(st.binary(min_size=4, max_size=64).filter(lambda b: len(b) % 4 == 0), st.integers(0, 10_000))
def test_flipping_any_data_bit_changes_the_commitment(data: bytes, position: int) -> None:
    tensor = Tensor("float32", (len(data) // 4,), data)
    bit = position % (len(data) * 8)
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert commit_tensors({"x": tensor}) != commit_tensors({"x": Tensor("float32", tensor.shape, bytes(flipped))})


def test_same_bytes_with_another_shape_commit_differently() -> None:
    data = bytes(range(8))
    assert commit_tensors({"x": Tensor("uint8", (8,), data)}) != commit_tensors({"x": Tensor("uint8", (2, 4), data)})


def test_same_bytes_with_another_dtype_commit_differently() -> None:
    data = bytes(range(8))
    assert commit_tensors({"x": Tensor("int32", (2,), data)}) != commit_tensors({"x": Tensor("float32", (2,), data)})
