"""Quantization helpers against an independent model of ezkl's encoding, and Poseidon against the circuit."""

from __future__ import annotations

import json
import math
from pathlib import Path

import ezkl
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from trustdial_verifier._internal.proof.quantization import felts_to_floats, tensor_poseidon, tensor_to_felts

# BN254 scalar field modulus (the order of the curve's prime-order subgroup).
BN254_R = 21888242871839275222246405745257275088548364400416034343698204186575808495617


def reference_felt(value: float, scale: int) -> str:
    """round(value * 2^scale) reduced mod r, as 32 little-endian bytes in hex (ezkl's instance format)."""
    scaled = value * 2.0**scale
    integer = math.floor(scaled + 0.5) if scaled >= 0 else -math.floor(-scaled + 0.5)
    return (integer % BN254_R).to_bytes(32, "little").hex()


def test_half_at_scale_13_is_4096() -> None:
    assert tensor_to_felts([0.5], 13, as_f32=False) == ["00" + "10" + "00" * 30]


def test_minus_one_is_the_field_negation() -> None:
    assert tensor_to_felts([-1.0], 0, as_f32=False) == [(BN254_R - 1).to_bytes(32, "little").hex()]


@given(st.lists(st.floats(min_value=-1000, max_value=1000, allow_nan=False, width=32), min_size=1, max_size=8))
def test_felts_match_independent_encoding(values: list[float]) -> None:
    # skip exact .5 ties: the rounding rule on ties is ezkl's to choose
    values = [v for v in values if (abs(v) * 2**13) % 1 != 0.5]
    assert tensor_to_felts(values, 13, as_f32=True) == [reference_felt(v, 13) for v in values]


@given(st.lists(st.integers(min_value=-(2**40), max_value=2**40), min_size=1, max_size=8))
def test_dequantized_felts_round_trip(integers: list[int]) -> None:
    values = [i / 2**13 for i in integers]
    felts = tensor_to_felts(values, 13, as_f32=False)
    assert felts_to_floats(felts, 13) == values


def test_poseidon_equals_the_in_circuit_hash(hashed_circuit, input_a: Path, tmp_path: Path) -> None:
    """gen_witness computes the hashed input's Poseidon inside the circuit; ours must agree."""
    values = np.frombuffer(__import__("base64").b64decode(json.loads(input_a.read_text())["data_b64"]), dtype="<f4")
    data = tmp_path / "input.json"
    data.write_text(json.dumps({"input_data": [values.tolist()]}))
    witness = ezkl.gen_witness(str(data), str(hashed_circuit.directory / "network.compiled"), str(tmp_path / "w.json"))
    settings = json.loads((hashed_circuit.directory / "settings.json").read_text())
    ours = tensor_poseidon(values.tolist(), settings["model_input_scales"][0], as_f32=True)
    assert witness["processed_inputs"]["poseidon_hash"] == [ours]
