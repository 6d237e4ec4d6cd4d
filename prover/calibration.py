"""Calibration data: ezkl's ``{"input_data": [[...]]}`` with samples concatenated, and ORT reference runs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from prover.errors import ProverError


def model_input_size(model: Path) -> tuple[str, list[int]]:
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    outputs = session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ProverError(
            "MODEL_UNSUPPORTED", f"expected one input and one output, found {len(inputs)} and {len(outputs)}"
        )
    shape = inputs[0].shape
    if not all(isinstance(d, int) for d in shape):
        raise ProverError("MODEL_UNSUPPORTED", f"expected a static input shape, found {shape}")
    return inputs[0].name, [int(d) for d in shape]


def load_samples(calibration: Path, model: Path) -> list[np.ndarray[Any, np.dtype[np.float32]]]:
    """Split the calibration file into input-shaped float32 samples."""
    try:
        doc = json.loads(calibration.read_text(encoding="utf-8"))
        flat = doc["input_data"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ProverError(
            "CALIBRATION_MALFORMED", f"expected {{'input_data': [[floats...]]}} in {calibration}"
        ) from err
    if not isinstance(flat, list) or len(flat) != 1 or not isinstance(flat[0], list) or not flat[0]:
        raise ProverError("CALIBRATION_MALFORMED", "expected input_data to hold one non-empty flat list of numbers")
    _, shape = model_input_size(model)
    size = math.prod(shape)
    values = np.asarray(flat[0], dtype=np.float32)
    if values.size % size != 0:
        raise ProverError("CALIBRATION_MALFORMED", f"{values.size} values is not a whole number of samples of {size}")
    return [chunk.reshape(shape) for chunk in np.split(values, values.size // size)]


def reference_outputs(model: Path, samples: list[np.ndarray[Any, np.dtype[np.float32]]]) -> list[np.ndarray[Any, Any]]:
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return [np.asarray(session.run(None, {name: sample})[0]).ravel() for sample in samples]
