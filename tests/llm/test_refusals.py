"""Each attack on the path between the enclave and the app is refused by the proxy before a token of it reaches
the app (the openai client raises); what was released before the attack is a prefix of the genuine answer."""

from __future__ import annotations

import base64
import json
from typing import Any

import cbor2
import openai
import pytest

from llm.conftest import client
from llm.stack import LlmStack

CHAT = [{"role": "user", "content": "Name three colours."}]
ARGS: dict[str, Any] = {"model": "tiny", "messages": CHAT, "max_tokens": 12, "temperature": 0}


def _stream(stack: LlmStack, **overrides: Any) -> tuple[str, int, openai.APIError | None]:
    """Released text, number of events released, and the error the client raised (if any)."""
    text, events = "", 0
    try:
        for chunk in client(stack.proxy_url).chat.completions.create(**{**ARGS, **overrides}, stream=True):
            events += 1
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    except openai.APIError as err:
        return text, events, err
    return text, events, None


def _genuine(stack: LlmStack) -> str:
    text, _, error = _stream(stack)
    assert error is None
    return text


def _edit_event(index: int, change: Any) -> Any:
    def rewrite(datas: list[str]) -> list[str]:
        out = []
        for data in datas:
            if data != "[DONE]":
                event = json.loads(data)
                if event.get("trustdial", {}).get("index") == index:
                    change(event)
                data = json.dumps(event)
            out.append(data)
        return out

    return rewrite


def _assert_refused(stack: LlmStack, genuine: str, code: str, *, nothing: bool = False) -> str:
    text, events, error = _stream(stack)
    assert error is not None, "the attack was not refused"
    assert (error.code or "").startswith(code), (error.code, error)
    assert genuine.startswith(text) and "TAMPERED" not in text
    if nothing:
        assert (text, events) == ("", 0)
    return text


def test_a_tampered_token_text_is_refused_before_release(box: LlmStack) -> None:
    genuine = _genuine(box)

    def change(event: dict[str, Any]) -> None:
        event["choices"][0]["delta"]["content"] = "TAMPERED"

    box.middlebox.rewrite_stream = _edit_event(3, change)
    released = _assert_refused(box, genuine, "RECEIPT_OUTPUT_MISMATCH")
    assert len(released) < len(genuine)


def test_a_tampered_token_id_is_refused(box: LlmStack) -> None:
    genuine = _genuine(box)

    def change(event: dict[str, Any]) -> None:
        event["trustdial"]["token_ids"] = [event["trustdial"]["token_ids"][0] ^ 1]

    box.middlebox.rewrite_stream = _edit_event(2, change)
    _assert_refused(box, genuine, "RECEIPT_OUTPUT_MISMATCH")


def test_a_receipt_moved_to_another_chunk_is_refused(box: LlmStack) -> None:
    genuine = _genuine(box)

    def swap(datas: list[str]) -> list[str]:
        events = [json.loads(d) for d in datas[:-1]]
        events[3]["trustdial"]["receipt"] = events[4]["trustdial"]["receipt"]
        return [*(json.dumps(e) for e in events), datas[-1]]

    box.middlebox.rewrite_stream = swap
    _assert_refused(box, genuine, "RECEIPT_")


@pytest.mark.parametrize(
    ("name", "rewrite"),
    [
        ("reordered", lambda d: [*d[:2], d[3], d[2], *d[4:]]),
        ("dropped", lambda d: [*d[:3], *d[4:]]),
        ("duplicated", lambda d: [*d[:3], d[2], *d[3:]]),
    ],
)
def test_reordered_dropped_or_duplicated_chunks_are_refused(box: LlmStack, name: str, rewrite: Any) -> None:
    genuine = _genuine(box)
    box.middlebox.rewrite_stream = rewrite
    _assert_refused(box, genuine, "LLM_CHUNK_ORDER")


@pytest.mark.parametrize("keep", [5, -2, -1])
def test_a_truncated_stream_is_refused(box: LlmStack, keep: int) -> None:
    """Cut after a few chunks, before the final receipt, or right before [DONE]."""
    genuine = _genuine(box)
    box.middlebox.rewrite_stream = lambda d: d[:keep]
    _assert_refused(box, genuine, "LLM_STREAM_TRUNCATED")


def test_a_final_receipt_for_another_completion_is_refused(box: LlmStack) -> None:
    genuine = _genuine(box)
    box.middlebox.rewrite_stream = None
    other = client(box.a.url).chat.completions.create(**{**ARGS, "max_tokens": 11}, stream=True)
    # take the final event of another (shorter) stream sent with another nonce
    finals = [c for c in other if not c.choices]
    final = finals[-1].model_dump()

    def swap_final(datas: list[str]) -> list[str]:
        return [*datas[:-2], json.dumps(final), datas[-1]]

    box.middlebox.rewrite_stream = swap_final
    _assert_refused(box, genuine, "RECEIPT_")


def test_a_receipt_from_another_key_is_refused_with_nothing_released(box: LlmStack) -> None:
    genuine = _genuine(box)
    box.middlebox.use_other = True  # enclave B answers; the proxy attested enclave A
    _assert_refused(box, genuine, "RECEIPT_SIGNATURE", nothing=True)
    with pytest.raises(openai.APIStatusError) as caught:
        client(box.proxy_url).chat.completions.create(**ARGS)
    assert caught.value.status_code == 502 and caught.value.code == "RECEIPT_SIGNATURE"


def test_another_models_bundle_is_refused_with_nothing_released(box: LlmStack) -> None:
    """The proxy expects the tiny bundle under the name tiny-b; the enclave serves another bundle there."""
    text, events, error = _stream(box, model="tiny-b")
    assert error is not None and error.code == "RECEIPT_MODEL_MISMATCH" and (text, events) == ("", 0)
    with pytest.raises(openai.APIStatusError) as caught:
        client(box.proxy_url).chat.completions.create(**{**ARGS, "model": "tiny-b"})
    assert caught.value.code == "RECEIPT_MODEL_MISMATCH"


@pytest.mark.parametrize("stream", [False, True])
def test_a_replayed_answer_for_an_earlier_nonce_is_refused(box: LlmStack, stream: bool) -> None:
    app = client(box.proxy_url)
    if stream:
        genuine = _genuine(box)
        box.middlebox.replay_next = box.middlebox.last_body
        _assert_refused(box, genuine, "RECEIPT_NONCE_MISMATCH", nothing=True)
        return
    app.chat.completions.create(**ARGS)
    box.middlebox.replay_next = box.middlebox.last_body
    with pytest.raises(openai.APIStatusError) as caught:
        app.chat.completions.create(**ARGS)
    assert caught.value.code == "RECEIPT_NONCE_MISMATCH"


def test_a_tampered_plain_answer_is_refused(box: LlmStack) -> None:
    def change(body: dict[str, Any]) -> dict[str, Any]:
        body["choices"][0]["message"]["content"] = "TAMPERED"
        return body

    box.middlebox.rewrite_plain = change
    with pytest.raises(openai.APIStatusError) as caught:
        client(box.proxy_url).chat.completions.create(**ARGS)
    assert caught.value.status_code == 502 and caught.value.code == "RECEIPT_OUTPUT_MISMATCH"
    assert "TAMPERED" not in caught.value.response.text


def test_a_request_record_for_other_settings_is_refused(box: LlmStack) -> None:
    """An answer computed for other sampling settings (here: delivered for a temperature-0 request) is refused on
    its request record, whatever its receipt says."""
    answer = client(box.middlebox.url).chat.completions.create(**{**ARGS, "temperature": 0.5, "seed": 1})
    record = cbor2.loads(base64.b64decode(answer.model_extra["trustdial"]["request"]))
    assert record["temperature"] == 0.5 and record["seed"] == 1 and record["seed_source"] == "request"
    box.middlebox.replay_next = box.middlebox.last_body  # delivered in answer to a temperature-0 request
    with pytest.raises(openai.APIStatusError) as caught:
        client(box.proxy_url).chat.completions.create(**ARGS)
    assert caught.value.code == "LLM_REQUEST_MISMATCH"
