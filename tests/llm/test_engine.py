"""The decoding loop against independent answers: transformers' templating, plain onnxruntime over the same graph
(no KV cache, no onnxruntime-genai), and the stop/length rules applied to an unstopped run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from trustdial_verifier._internal.llm.engine import Engine, FinishReason, _held_back
from trustdial_verifier._internal.llm.request import Endpoint, RequestRecord, parse_request, resolve

from llm.stack import DATA, TINY

REFERENCE = json.loads((DATA / "tiny-reference.json").read_text())


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(TINY, threads=1)


def _record(max_tokens: int, seed: int = 0, **body: object) -> RequestRecord:
    chat = {"model": "tiny", "messages": REFERENCE["chats"][0]["messages"], "temperature": 0, **body}
    return resolve(parse_request(Endpoint.CHAT, chat), max_tokens=max_tokens, seed=seed)


def _plain_onnxruntime_greedy(directory: Path, prompt: list[int], steps: int) -> list[int]:
    """Greedy decoding by re-running the whole prefix each step with empty past tensors."""
    session = ort.InferenceSession(str(directory / "model.onnx"), providers=["CPUExecutionProvider"])
    config = json.loads((directory / "genai_config.json").read_text())["model"]["decoder"]
    past = np.zeros((1, config["num_key_value_heads"], 0, config["head_size"]), dtype=np.float32)
    feeds_past = {i.name: past for i in session.get_inputs() if i.name.startswith("past_key_values")}
    ids = list(prompt)
    out = []
    for _ in range(steps):
        logits = session.run(
            ["logits"],
            {"input_ids": np.array([ids], dtype=np.int64), "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
             **feeds_past},
        )[0]  # fmt: skip
        token = int(np.argmax(logits[0, -1]))
        out.append(token)
        ids.append(token)
    return out


@pytest.mark.parametrize("chat", REFERENCE["chats"], ids=["default-system", "own-system"])
def test_templating_gives_the_token_ids_transformers_gives(engine: Engine, chat: dict[str, object]) -> None:
    record = resolve(parse_request(Endpoint.CHAT, {"model": "tiny", "messages": chat["messages"]}), max_tokens=1,
                     seed=0)  # fmt: skip
    assert engine.prompt_ids(record) == chat["prompt_ids"]


def test_greedy_equals_plain_onnxruntime_over_the_same_graph(engine: Engine) -> None:
    prompt = REFERENCE["chats"][0]["prompt_ids"]
    completion = engine.complete(_record(16), prompt)
    assert list(completion.completion_ids) == _plain_onnxruntime_greedy(TINY, prompt, 16)
    assert completion.finish_reason is FinishReason.LENGTH and len(completion.completion_ids) == 16


def test_seeded_sampling_repeats_for_a_seed_and_moves_with_it(engine: Engine) -> None:
    prompt = REFERENCE["chats"][1]["prompt_ids"]
    runs = {seed: engine.complete(_record(12, seed, temperature=1.0, top_k=40), prompt) for seed in (1, 2, 3)}
    again = engine.complete(_record(12, 1, temperature=1.0, top_k=40), prompt)
    assert again == runs[1]
    assert len({r.completion_ids for r in runs.values()}) == 3
    greedy = engine.complete(_record(12), prompt)
    assert greedy.completion_ids not in {r.completion_ids for r in runs.values()}


def test_stop_sequences_cut_the_text_where_the_unstopped_run_has_them(engine: Engine) -> None:
    prompt = REFERENCE["chats"][0]["prompt_ids"]
    full = engine.complete(_record(20), prompt)
    for start, length in ((3, 3), (10, 5), (25, 2)):
        stop = full.text[start : start + length]
        cut = full.text.index(stop)
        stopped = engine.complete(_record(20, stop=[stop, "never-there"]), prompt)
        assert stopped.text == full.text[:cut]
        assert stopped.finish_reason is FinishReason.STOP
        assert stopped.completion_ids == full.completion_ids[: len(stopped.completion_ids)]
        assert len(stopped.completion_ids) < 20


def test_held_back_text_is_the_longest_stop_prefix() -> None:
    assert _held_back("hello wor", ("world",)) == 3
    assert _held_back("hello", ("xyz",)) == 0
    assert _held_back("aab", ("abc", "bq")) == 2
    assert _held_back("", ("ab",)) == 0


def test_max_tokens_is_resolved_against_the_context(engine: Engine) -> None:
    assert engine.resolve_max_tokens(None, 40, 256) == engine.context_length - 40
    assert engine.resolve_max_tokens(10, 40, 256) == 10
    from trustdial_verifier._internal.llm.request import RequestRefused

    with pytest.raises(RequestRefused) as caught:
        engine.resolve_max_tokens(engine.context_length, 1, 256)
    assert caught.value.code == "context_length_exceeded"
