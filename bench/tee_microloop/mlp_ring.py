"""Shared set-up of the hand-off benches (``handoff.py``, ``interference.py``, ``split.py``): the
reference MLP on one intra-op thread, its fixed plain binding, and a model bound to every slot
of a sealer process's ring with the same input already in place."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from enclave_app.receipts.bound_model import BoundModel
from enclave_app.receipts.process_pipeline import ProcessReceiptPipeline
from enclave_app.reference_models import build_mlp

MODEL_SHA = b"\x11" * 32
ATTESTATION = b"\x22" * 32


def mlp_session() -> tuple[ort.InferenceSession, np.ndarray]:
    """The 1M-parameter MLP (1 intra-op thread) and a batch-1 input for it."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(build_mlp(), options, providers=["CPUExecutionProvider"])
    return session, np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)


def fixed_binding(session: ort.InferenceSession, x: np.ndarray) -> Any:
    """The fastest plain loop's binding: input bound once, output kept by onnxruntime."""
    binding = session.io_binding()
    binding.bind_cpu_input("x", x)
    binding.bind_output("y", "cpu")
    return binding


def bound_to_every_slot(pipeline: ProcessReceiptPipeline, session: ort.InferenceSession, x: np.ndarray) -> BoundModel:
    """A ``BoundModel`` whose every slot is already laid out for the model and holds ``x``."""
    bound = BoundModel(pipeline, session, MODEL_SHA)
    for index in range(pipeline.slots):
        bound._own(index)  # private parts: the benches dissect the hand-off
        bound._slot[index][0][0][...] = x
    return bound
