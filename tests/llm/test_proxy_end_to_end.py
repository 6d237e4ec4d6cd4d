"""The openai client (strict validation) through proxy -> middlebox -> gateway -> trustdial serve, all real."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from llm.conftest import client
from llm.stack import LlmStack

CHAT = [{"role": "user", "content": "What is the capital of France?"}]
ARGS: dict[str, object] = {"model": "tiny", "messages": CHAT, "max_tokens": 2, "temperature": 0}


def test_models_are_listed_for_the_openai_client(box: LlmStack) -> None:
    models = client(box.a.url).models.list()
    assert sorted(m.id for m in models) == ["tiny", "tiny-b"]
    assert {m.id: m.model_extra["bundle_digest"] for m in models} == box.digests


def test_plain_chat_is_verified_and_marked(box: LlmStack) -> None:
    raw = client(box.proxy_url).chat.completions.with_raw_response.create(
        model="tiny", messages=CHAT, max_tokens=12, temperature=0
    )
    assert raw.headers["x-trustdial-verified"] == "true"
    answer = raw.parse()
    assert answer.model_extra["trustdial_verified"] is True
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == 12
    evidence = answer.model_extra["trustdial"]
    assert len(evidence["completion_ids"]) == 12 and evidence["bundle_digest"] == box.digests["tiny"]


def test_stream_is_verified_chunk_by_chunk_and_equals_the_plain_answer(box: LlmStack) -> None:
    app = client(box.proxy_url)
    plain = app.chat.completions.create(model="tiny", messages=CHAT, max_tokens=10, temperature=0)
    with app.chat.completions.with_streaming_response.create(
        model="tiny", messages=CHAT, max_tokens=10, temperature=0, stream=True,
        stream_options={"include_usage": True},
    ) as response:  # fmt: skip
        assert response.headers["x-trustdial-verified"] == "true"
        chunks = list(response.parse())
    assert all(c.model_extra["trustdial_verified"] is True for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 10


def test_text_completions_plain_and_streamed_with_a_seed(box: LlmStack) -> None:
    app = client(box.proxy_url)
    kwargs = {"model": "tiny", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0.9, "seed": 11}
    first = app.completions.create(**kwargs)  # type: ignore[call-overload]
    again = app.completions.create(**kwargs)  # type: ignore[call-overload]
    assert first.choices[0].text == again.choices[0].text  # same seed, same tokens
    assert first.model_extra["trustdial"]["seed"] == 11
    # the SDK types a text-completion chunk as Completion, whose finish_reason may not be null; OpenAI's own
    # streams send null before the last chunk, as the gateway does, so strict validation cannot read any of them
    lenient = openai.OpenAI(base_url=box.proxy_url + "/v1", api_key="unused", max_retries=0)
    chunks = list(lenient.completions.create(**kwargs, stream=True))  # type: ignore[call-overload]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == first.choices[0].text
    assert all(c.model_extra["trustdial_verified"] is True for c in chunks)


def test_without_a_seed_the_enclave_draws_one_and_reports_it(box: LlmStack) -> None:
    app = client(box.proxy_url)
    answer = app.chat.completions.create(model="tiny", messages=CHAT, max_tokens=6, temperature=1.0)
    seed = answer.model_extra["trustdial"]["seed"]
    assert isinstance(seed, int) and 0 <= seed < 2**31
    again = app.chat.completions.create(model="tiny", messages=CHAT, max_tokens=6, temperature=1.0, seed=seed)
    assert again.model_extra["trustdial"]["completion_ids"] == answer.model_extra["trustdial"]["completion_ids"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"model": "tiny", "messages": [{"role": "robot", "content": "x"}]}, 400, "invalid_value"),
        ({"model": "tiny", "messages": [{"role": "user"}]}, 400, "invalid_type"),
        ({"model": "tiny", "messages": "hello"}, 400, "invalid_value"),
        ({"model": "tiny"}, 400, "missing_required_parameter"),
        ({"model": "nope", "messages": CHAT}, 404, "model_not_found"),
        ({"model": "tiny", "messages": CHAT, "max_tokens": 0}, 400, "invalid_value"),
        ({"model": "tiny", "messages": CHAT, "max_tokens": 100_000}, 400, "invalid_value"),
        ({"model": "tiny", "messages": CHAT, "max_tokens": 250}, 400, "context_length_exceeded"),
        ({"model": "tiny", "messages": [{"role": "user", "content": "word " * 400}]}, 400, "context_length_exceeded"),
        ({"model": "tiny", "messages": CHAT, "tools": [{"type": "function"}]}, 400, "unsupported_parameter"),
        ({"model": "tiny", "messages": CHAT, "logprobs": True}, 400, "unsupported_parameter"),
        ({"model": "tiny", "messages": CHAT, "n": 2}, 400, "unsupported_parameter"),
        ({"model": "tiny", "messages": CHAT, "temperature": 3}, 400, "invalid_value"),
        ({"model": "tiny", "messages": CHAT, "frobnicate": 1}, 400, "unsupported_parameter"),
    ],
)
def test_bad_input_gets_a_4xx_with_a_code_and_the_server_keeps_serving(
    box: LlmStack, body: dict[str, object], status: int, code: str
) -> None:
    for url in (box.a.url, box.proxy_url):  # the gateway itself, and through the proxy
        answer = httpx.post(url + "/v1/chat/completions", json=body, timeout=30)
        assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert error["code"] == code and error["message"] and error["type"] == "invalid_request_error"
    assert client(box.proxy_url).chat.completions.create(model="tiny", messages=CHAT, max_tokens=2).choices


def test_malformed_json_is_refused_with_a_code(box: LlmStack) -> None:
    answer = httpx.post(box.a.url + "/v1/chat/completions", content=b"{not json", timeout=30)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "tiny", "model": "other", "messages": []}',  # which model counts would depend on the parser
        b'{"model": "tiny", "max_tokens": ' + b"9" * 5000 + b', "messages": []}',  # past the int-string limit
        b'{"model": "tiny", "messages": [{"role": "user", "content": "\\ud800"}]}',  # a lone surrogate
        b'{"model": "tiny", "temperature": NaN, "messages": []}',
    ],
    ids=["duplicate-key", "huge-integer", "lone-surrogate", "nan"],
)
def test_json_the_strict_decoder_refuses_is_invalid_json_and_the_gateway_keeps_serving(
    box: LlmStack, body: bytes
) -> None:
    answer = httpx.post(box.a.url + "/v1/chat/completions", content=body, timeout=30)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_json", answer.text
    assert "JSON_" in answer.json()["error"]["message"]
    assert client(box.a.url).chat.completions.create(model="tiny", messages=CHAT, max_tokens=2).choices


def test_the_openai_client_raises_the_gateway_error(box: LlmStack) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(box.proxy_url).chat.completions.create(model="nope", messages=CHAT)  # type: ignore[arg-type]
    assert caught.value.code == "model_not_found"


def test_openapi_documents_the_new_routes(box: LlmStack) -> None:
    document = httpx.get(box.a.url + "/openapi.json", timeout=30).json()
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/models"):
        assert path in document["paths"]
    chat = document["paths"]["/v1/chat/completions"]["post"]
    assert "messages" in json.dumps(chat["requestBody"]) and "400" in chat["responses"]


@pytest.mark.parametrize(
    ("kwargs", "error", "code", "param"),
    [
        ({"messages": [{"role": "robot", "content": "x"}]}, openai.BadRequestError, "invalid_value",
         "messages[0].role"),
        ({"model": "nope"}, openai.NotFoundError, "model_not_found", "model"),
        ({"max_tokens": 0}, openai.BadRequestError, "invalid_value", "max_tokens"),
        ({"max_tokens": 100_000}, openai.BadRequestError, "invalid_value", "max_tokens"),
        ({"messages": [{"role": "user", "content": "word " * 400}]}, openai.BadRequestError,
         "context_length_exceeded", "messages"),
        ({"max_tokens": 250}, openai.BadRequestError, "context_length_exceeded", "max_tokens"),
    ],
    ids=["malformed-messages", "unknown-model", "max-tokens-0", "max-tokens-over", "prompt-over-context",
         "prompt-and-max-tokens-over-context"],
)  # fmt: skip
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_bad_input_raises_the_typed_openai_error_before_any_token(
    box: LlmStack, kwargs: dict[str, object], error: type[openai.APIStatusError], code: str, param: str, stream: bool
) -> None:
    """The openai client, to the gateway and through the proxy, plain and streamed: the typed error with its code
    (a stream is refused with its HTTP status, before any event), and both keep serving."""
    for url in (box.a.url, box.proxy_url):
        with pytest.raises(error) as caught:
            answer = client(url).chat.completions.create(**{**ARGS, **kwargs, "stream": stream})  # type: ignore[call-overload]
            list(answer) if stream else answer
        assert caught.value.code == code and caught.value.type == "invalid_request_error", caught.value
        assert caught.value.param == param, caught.value.param
    assert client(box.proxy_url).chat.completions.create(**{**ARGS, "stream": False}).choices  # type: ignore[call-overload]


def test_a_text_prompt_longer_than_the_context_is_refused_with_its_code(box: LlmStack) -> None:
    for url in (box.a.url, box.proxy_url):
        with pytest.raises(openai.BadRequestError) as caught:
            client(url).completions.create(model="tiny", prompt="word " * 400, max_tokens=4)
        assert caught.value.code == "context_length_exceeded"
    with pytest.raises(openai.NotFoundError) as missing:
        client(box.a.url).completions.create(model="nope", prompt="hi", max_tokens=4)
    assert missing.value.code == "model_not_found"
