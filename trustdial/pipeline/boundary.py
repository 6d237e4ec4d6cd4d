"""Commitments to boundary tensors in the form a ZK step can expose: ezkl felts of the
quantized tensor (public visibility) and their Poseidon hash (ezkl ``hashed`` visibility).

The scale is the consuming (or producing) circuit's input (output) scale from its pinned
settings.json; the same float tensor gives different felts at another scale.
"""

from __future__ import annotations

import ezkl
import numpy as np


def tensor_felts(values: np.ndarray, scale: int) -> list[str]:
    """ezkl's field elements for ``values`` quantized at ``scale``, in C order."""
    flat = np.asarray(values, dtype=np.float32).ravel()
    return [ezkl.float_to_felt(float(v), scale, ezkl.PyInputType.F32) for v in flat]


def poseidon_commitment(values: np.ndarray, scale: int) -> str:
    """The Poseidon hash ezkl exposes for ``values`` under hashed visibility (64 hex digits)."""
    (digest,) = ezkl.poseidon_hash(tensor_felts(values, scale))
    return str(digest)
