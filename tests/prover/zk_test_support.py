"""Helpers shared by the prover tests (kept out of conftest so test modules can import them)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
from verifier.proof.tensors import canonical_tensor_json

SIZES = [6, 12, 3]
# moto accepts any credentials; these keep boto3 from looking for real ones.
AWS_TEST_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


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
