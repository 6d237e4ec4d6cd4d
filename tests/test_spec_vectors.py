"""The published specs' test vectors against the code: every ``<!-- vector: NAME -->`` block in docs/
is a hex string the code must reproduce exactly. The vectors are the specs' own (hand-assembled from
the layouts they describe); digests are also recomputed here from the published bytes alone."""

from __future__ import annotations

import hashlib
import re
import struct
from pathlib import Path

import pytest
from trustdial_verifier._internal.composite.nonce import derive_step_nonce
from trustdial_verifier._internal.composite.receipt import TensorData
from trustdial_verifier._internal.composite.tensor_commitment import tensor_sha256
from trustdial_verifier._internal.tensors import Tensor, commit_tensors, encode_tensors

DOCS = Path(__file__).resolve().parent.parent / "docs"
_BLOCK = re.compile(r"<!-- vector: ([a-z0-9-]+) -->\s*```\n(.*?)```", re.DOTALL)


def _vectors() -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for path in sorted(DOCS.glob("*.md")):
        for name, body in _BLOCK.findall(path.read_text()):
            assert name not in found, f"vector {name} published twice"
            found[name] = bytes.fromhex("".join(body.split()))
    return found


VECTORS = _vectors()
RECEIPT_SET = {"b": Tensor("int8", (2,), bytes([1, 0xFE])), "a": Tensor("float32", (), struct.pack("<f", 1.0))}
DECISION = TensorData("float32", (1, 2), struct.pack("<2f", 0.25, -1.5))

#: name -> what the code computes for the input the spec describes beside the vector
COMPUTED = {
    "receipt-tensor-encoding": lambda: encode_tensors(RECEIPT_SET),
    "receipt-tensor-sha256": lambda: commit_tensors(RECEIPT_SET),
    "composite-tensor-encoding": lambda: encode_tensors(
        {"decision": Tensor(DECISION.dtype, DECISION.shape, DECISION.data)}
    ),
    "composite-tensor-sha256": lambda: bytes.fromhex(tensor_sha256("decision", DECISION)),
    "composite-step-nonce": lambda: bytes.fromhex(derive_step_nonce("00" * 32, "11" * 32, 1, "head")),
}


def test_every_published_vector_is_checked() -> None:
    assert set(VECTORS) == set(COMPUTED)


@pytest.mark.parametrize("name", sorted(COMPUTED))
def test_code_reproduces_the_published_vector(name: str) -> None:
    assert COMPUTED[name]() == VECTORS[name]


@pytest.mark.parametrize("spec", ["receipt", "composite"])
def test_published_digest_is_sha256_of_the_published_encoding(spec: str) -> None:
    assert hashlib.sha256(VECTORS[f"{spec}-tensor-encoding"]).digest() == VECTORS[f"{spec}-tensor-sha256"]


def test_composite_encoding_has_the_layout_the_spec_states() -> None:
    # magic "trustdial/tensors/v1\0", u32 count, then u32 ndim (not u8): fields at their stated offsets
    encoded = VECTORS["composite-tensor-encoding"]
    assert encoded[:21] == b"trustdial/tensors/v1\x00"
    assert struct.unpack(">I", encoded[21:25]) == (1,)
    name_length = struct.unpack(">I", encoded[25:29])[0]
    after_dtype = 29 + name_length + 1 + len("float32")
    assert struct.unpack(">I", encoded[after_dtype : after_dtype + 4]) == (2,)


def test_step_nonce_is_the_stated_hash() -> None:
    material = b"trustdial.composite-step/1\x00" + bytes(32) + b"\x11" * 32 + struct.pack(">I", 1) + b"head"
    assert hashlib.sha256(material).digest() == VECTORS["composite-step-nonce"]
