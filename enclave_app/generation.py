"""Greedy autoregressive decoding for decoder-only ONNX LMs (``input_ids`` [1, T] int64 ->
``logits`` [1, T, vocab]). No KV cache: each step re-runs the whole prefix."""

from __future__ import annotations

import numpy as np

from enclave_app.errors import RequestError
from enclave_app.models import LoadedModel


def greedy_decode(model: LoadedModel, prompt: list[int], max_new_tokens: int, eos_token_id: int) -> list[int]:
    """Token ids of the completion (without the prompt); stops after ``eos_token_id`` (kept)."""
    ids = list(prompt)
    completion: list[int] = []
    for _ in range(max_new_tokens):
        logits = model.run({"input_ids": np.asarray([ids], dtype=np.int64)})["logits"]
        if logits.ndim != 3 or logits.shape[1] != len(ids):
            raise RequestError(
                "BAD_MODEL_OUTPUT", f"logits must be [1, {len(ids)}, vocab], found {list(logits.shape)}", 500
            )
        token = int(np.argmax(logits[0, -1]))
        completion.append(token)
        ids.append(token)
        if token == eos_token_id:
            break
    return completion
