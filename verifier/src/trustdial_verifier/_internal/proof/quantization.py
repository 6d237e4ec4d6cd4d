"""From float tensors to the field elements a proof's public instances hold.

ezkl quantizes each value as ``round(v * 2**scale)`` mapped into the BN254 scalar field
(negative numbers become ``p - |x|``) and writes it as 64 hex chars, little-endian. Model
inputs are first rounded to float32 (settings ``input_types == ["F32"]``); outputs read back
from a proof are exact multiples of ``2**-scale`` and are re-quantized in float64.

``hashed`` visibility replaces a tensor's instances with ezkl's Poseidon hash of its felts.
"""

from __future__ import annotations

from collections.abc import Iterable

from trustdial_verifier._internal.proof import ezkl_calls


def tensor_to_felts(values: Iterable[float], scale: int, *, as_f32: bool) -> list[str]:
    """Quantize each value to a field element (the exact strings found in ``proof["instances"]``)."""
    return [ezkl_calls.float_to_felt(v, scale, as_f32=as_f32) for v in values]


def felts_to_floats(felts: Iterable[str], scale: int) -> list[float]:
    """Dequantize instance felts back to floats (``felt / 2**scale``)."""
    return [ezkl_calls.felt_to_float(f, scale) for f in felts]


def tensor_poseidon(values: Iterable[float], scale: int, *, as_f32: bool) -> str:
    """ezkl's Poseidon hash of the quantized tensor: the single instance of a ``hashed`` tensor."""
    return ezkl_calls.poseidon_hash(tensor_to_felts(values, scale, as_f32=as_f32))
