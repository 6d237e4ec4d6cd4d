"""The enclave's hot-path encoders produce exactly the bytes of the verifier's reference encoders."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from trustdial_verifier._internal.receipts.model import Commitment, Receipt, Statement
from trustdial_verifier._internal.tensors import COMMITMENT_KIND_SHA256, Tensor, TensorError, commit_tensors

from enclave_app.receipts.fast_encoding import ArrayCommitter, StatementEncoder, encode_receipt

digests = st.binary(min_size=32, max_size=32)
uints = st.integers(0, (1 << 64) - 1)
params = st.dictionaries(
    st.text(min_size=1, max_size=12), st.integers(-(1 << 40), 1 << 40) | st.text(max_size=8), max_size=4
)
dtypes = st.sampled_from(
    ["float32", "float64", "int8", "uint8", "int16", "int32", "int64", "uint64", "bool", "float16"]
)
arrays = st.tuples(dtypes, st.lists(st.integers(0, 4), max_size=3), st.integers(0, 2**32 - 1)).map(
    lambda t: (np.random.default_rng(t[2]).integers(0, 2, size=t[1]) if t[0] == "bool" else
               np.random.default_rng(t[2]).standard_normal(t[1]) * 100).astype(t[0])
)  # fmt: skip


@given(st.dictionaries(st.text(min_size=1, max_size=6), arrays, min_size=1, max_size=4), st.booleans())
def test_array_commitment_equals_the_reference(values: dict[str, np.ndarray], big_endian: bool) -> None:
    reference = commit_tensors({n: Tensor.from_array(a) for n, a in values.items()})
    if big_endian:
        values = {n: a.astype(a.dtype.newbyteorder(">")) for n, a in values.items()}
    assert ArrayCommitter().commit(values) == reference


@given(st.lists(st.tuples(st.text(min_size=1, max_size=3), arrays, st.booleans()), min_size=1, max_size=12))
def test_cached_layouts_commit_like_the_reference(sequence: list[tuple[str, np.ndarray, bool]]) -> None:
    """One committer over many one-tensor sets (arrays and Tensors, repeated layouts hit the cache)."""
    committer = ArrayCommitter()
    for name, array, as_tensor in sequence * 2:
        value = Tensor.from_array(array) if as_tensor else array
        assert committer.commit({name: value}) == commit_tensors({name: Tensor.from_array(array)})


def test_transposed_array_commits_in_c_order() -> None:
    array = np.arange(12, dtype=np.int32).reshape(3, 4).T
    assert ArrayCommitter().commit({"a": array}) == commit_tensors({"a": Tensor.from_array(array)})


@given(
    st.sampled_from(["infer", "generate", "llm-completion", "llm-chunk"]), digests, digests, digests,
    st.binary(max_size=64), uints, uints, digests, params,
)  # fmt: skip
def test_statement_encoder_equals_statement_encode(
    op: str,
    model: bytes,
    inp: bytes,
    out: bytes,
    nonce: bytes,
    ts: int,
    seq: int,
    att: bytes,
    prm: dict[str, int | str],
) -> None:
    reference = Statement(
        op=op, model=model, input=Commitment(COMMITMENT_KIND_SHA256, inp),
        output=Commitment(COMMITMENT_KIND_SHA256, out), nonce=nonce, timestamp_ms=ts, seq=seq, attestation=att,
        params=prm,
    ).encode()  # fmt: skip
    assert StatementEncoder(att).encode(op, model, inp, out, nonce, ts, seq, prm) == reference


@given(st.binary(max_size=300), st.binary(max_size=300), uints, st.lists(digests, max_size=30))
def test_receipt_encoder_equals_receipt_encode(statement: bytes, seal: bytes, index: int, path: list[bytes]) -> None:
    assert encode_receipt(statement, seal, index, path) == Receipt(statement, seal, index, tuple(path)).encode()


def test_invalid_bool_array_is_refused_even_after_a_tensor_with_the_same_layout() -> None:
    committer = ArrayCommitter()
    committer.commit({"b": Tensor("bool", (2,), b"\x00\x01")})
    invalid = np.array([0, 2], np.uint8).view(np.bool_)
    try:
        committer.commit({"b": invalid})
    except TensorError as err:
        assert err.code == "TENSOR_BOOL"
    else:
        raise AssertionError("a bool array holding 2 was committed")
