"""Helpers shared by the prover tests (kept out of conftest so test modules can import them)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
from trustdial_verifier._internal.proof.tensors import canonical_tensor_json

SIZES = [6, 12, 3]


@dataclass(frozen=True)
class Circuit:
    directory: Path
    model: Path


def write_tensor(path: Path, values: np.ndarray, dtype: str = "float32") -> Path:
    path.write_text(
        json.dumps(canonical_tensor_json(values.ravel().tolist(), list(values.shape), dtype)), encoding="utf-8"
    )
    return path


def onnx_output(model: Path, values: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"input": values.astype(np.float32)})[0])
