"""Greedy generation through the live service against an independent numpy transformer."""

from __future__ import annotations

import numpy as np
from verifier.client import Client
from verifier.receipts import ReceiptError

from enclave.live_service import LiveService
from enclave_app.reference_models import TinyLmWeights, tiny_lm_weights

PROMPT = [3, 1, 4, 1, 5]


def _logits(w: TinyLmWeights, ids: list[int]) -> np.ndarray:
    x = w.embed[ids].astype(np.float64) + w.position[: len(ids)]
    q, k, v = x @ w.wq, x @ w.wk, x @ w.wv
    scores = q @ k.T / np.sqrt(w.wq.shape[0])
    scores = np.where(np.tril(np.ones((len(ids), len(ids)))) > 0, scores, -np.inf)
    attn = np.exp(scores - scores.max(axis=-1, keepdims=True))
    attn /= attn.sum(axis=-1, keepdims=True)
    x2 = x + (attn @ v) @ w.wo
    x3 = x2 + np.maximum(x2 @ w.w1, 0) @ w.w2
    return np.asarray(x3 @ w.unembed)


def _greedy(w: TinyLmWeights, prompt: list[int], steps: int, eos: int = -1) -> list[int]:
    ids, out = list(prompt), []
    for _ in range(steps):
        token = int(np.argmax(_logits(w, ids)[-1]))
        out.append(token)
        ids.append(token)
        if token == eos:
            break
    return out


WEIGHTS = tiny_lm_weights(seed=3)  # the weights written by write_models


def test_completion_matches_an_independent_numpy_decoder(live: LiveService) -> None:
    with Client(live.url, live.expected()) as client:
        result = client.generate("lm", PROMPT, max_new_tokens=8)
    assert result.completion_ids == _greedy(WEIGHTS, PROMPT, 8)


def test_generation_stops_at_the_end_of_sequence_token(live: LiveService) -> None:
    expected = _greedy(WEIGHTS, PROMPT, 8)
    eos = expected[2]
    with Client(live.url, live.expected()) as client:
        result = client.generate("lm", PROMPT, max_new_tokens=8, eos_token_id=eos)
    assert result.completion_ids == expected[: expected.index(eos) + 1]


def test_generation_receipt_binds_prompt_completion_and_parameters(live: LiveService) -> None:
    with Client(live.url, live.expected()) as client:
        result = client.generate("lm", PROMPT, max_new_tokens=4)
    assert result.statement.op == "generate"
    assert result.statement.params == {"decoding": "greedy", "max_new_tokens": 4, "eos_token_id": -1}


def test_tampered_completion_is_rejected(live: LiveService) -> None:
    from enclave.middlebox import http_through

    def tamper(path: str, body: dict[str, object]) -> dict[str, object]:
        if path == "/v1/generate":
            ids = list(body["completion_ids"])  # type: ignore[call-overload]
            body["completion_ids"] = [*ids[:-1], (ids[-1] + 1) % 32]
        return body

    with Client(live.url, live.expected(), http=http_through(live.url, tamper)) as client:
        try:
            client.generate("lm", PROMPT, max_new_tokens=4)
        except ReceiptError as err:
            assert err.code == "RECEIPT_OUTPUT_MISMATCH"
        else:
            raise AssertionError("a tampered completion was accepted")
