"""Framing-level errors on the OpenAI-compatible routes of the live gateway (``trustdial gateway`` in front of
``trustdial serve --llm``), sent by real HTTP clients on loopback (raw sockets, httpx, the ``openai`` client): each
is answered with its status in OpenAI's error shape ``{"error": {"message", "type", "param", "code"}}`` with a stable
code (where the ``openai`` client can send it, it raises the typed error), and the gateway keeps serving. The
gateway's own routes keep the gateway's error shape."""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from llm.conftest import client
from llm.stack import LlmStack

CHAT = [{"role": "user", "content": "What is the capital of France?"}]
GOOD = {"model": "tiny", "messages": CHAT, "max_tokens": 2, "temperature": 0}
ROUTE = "/v1/chat/completions"
BIG = 5 << 20  # over the gateway's 4 MiB body limit


def _openai_error(body: bytes, code: str) -> dict[str, Any]:
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert error["code"] == code and error["message"] and error["type"] == "invalid_request_error", error
    return dict(error)


def _still_serving(stack: LlmStack) -> None:
    answer = client(stack.a.url).chat.completions.create(**GOOD)  # type: ignore[call-overload]
    assert answer.choices[0].message.content is not None


def _raw(stack: LlmStack, request: bytes, *, pause: float = 0.0) -> tuple[int, bytes]:
    """Send raw bytes on a new connection; the status and body of the answer (read to the end of the connection)."""
    address = urlsplit(stack.a.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(request)
        if pause:
            time.sleep(pause)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def _head(extra: str, body: bytes = b"") -> bytes:
    return f"POST {ROUTE} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode() + body


def test_a_body_over_4_mib_is_413_in_openai_shape_for_the_openai_client(box: LlmStack) -> None:
    huge = [{"role": "user", "content": "x" * BIG}]
    with pytest.raises(openai.APIStatusError) as caught:
        client(box.a.url).chat.completions.create(model="tiny", messages=huge)  # type: ignore[arg-type]
    assert caught.value.status_code == 413 and caught.value.code == "body_too_large"
    assert caught.value.type == "invalid_request_error"
    _openai_error(caught.value.response.content, "body_too_large")
    _still_serving(box)


@pytest.mark.parametrize("size", [(1 << 20) + 1, BIG], ids=["over-1-MiB", "over-4-MiB"])
def test_oversized_bodies_declared_or_chunked_get_one_code(box: LlmStack, size: int) -> None:
    declared = httpx.post(box.a.url + ROUTE, content=b" " * size, headers={"content-type": "application/json"},
                          timeout=60)  # fmt: skip
    assert declared.status_code == 413
    _openai_error(declared.content, "body_too_large")

    def pieces() -> Any:
        for _ in range(size // 65536 + 1):
            yield b" " * 65536

    chunked = httpx.post(box.a.url + "/v1/completions", content=pieces(), timeout=60)
    assert chunked.status_code == 413
    _openai_error(chunked.content, "body_too_large")
    _still_serving(box)


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (_head("Bad Header: x\r\n"), 400, "bad_request"),
        (_head("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", b"{}"), 400, "bad_request"),
        (_head("Content-Length: 1x\r\n"), 400, "bad_request"),
        (_head("Transfer-Encoding: chunked\r\n", b"zz\r\n"), 400, "bad_request"),
        (_head("Transfer-Encoding: gzip\r\n"), 501, "not_implemented"),
        (f"POST {ROUTE} HTTP/1.2\r\nHost: x\r\n\r\n".encode(), 505, "http_version_not_supported"),
        (_head("X-Long: " + "a" * 20000 + "\r\n"), 431, "headers_too_large"),
        (_head(f"Content-Length: {BIG}\r\n"), 413, "body_too_large"),
    ],
    ids=["header-line", "smuggling", "content-length", "chunk-size", "transfer-coding", "version", "head-size",
         "declared-size"],
)  # fmt: skip
def test_malformed_http_is_answered_in_openai_shape(box: LlmStack, request_bytes: bytes, status: int,
                                                    code: str) -> None:  # fmt: skip
    assert _raw(box, request_bytes) == (status, _raw(box, request_bytes)[1])
    answer_status, body = _raw(box, request_bytes)
    assert answer_status == status
    _openai_error(body, code)
    _still_serving(box)


def test_a_body_that_stops_arriving_is_408_in_openai_shape(box: LlmStack) -> None:
    status, body = _raw(box, _head("Content-Length: 100\r\n", b'{"model":'))  # the gateway waits 10 s
    assert status == 408
    _openai_error(body, "request_timeout")
    _still_serving(box)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{not json", "invalid_json"),
        (b'{"model": "tiny", "messages": [{"role": "user", "content": "\xff\xfe"}]}', "invalid_json"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
        (b'{"model": "tiny", "messages": [], "max_tokens": ' + b"9" * 5000 + b"}", "invalid_json"),
        (b'["model", "tiny"]', "invalid_type"),
        (b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', "invalid_json"),
        (b"", "invalid_json"),
    ],
    ids=["syntax", "not-utf-8", "nesting", "integer-digits", "not-an-object", "nan", "empty"],
)
def test_bad_json_is_400_in_openai_shape(box: LlmStack, content: bytes, code: str) -> None:
    answer = httpx.post(box.a.url + ROUTE, content=content, headers={"content-type": "application/json"}, timeout=30)
    assert answer.status_code == 400, answer.text
    _openai_error(answer.content, code)
    _still_serving(box)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_body_that_is_not_json_by_its_content_type_is_415(box: LlmStack, content_type: str) -> None:
    answer = httpx.post(box.a.url + ROUTE, content=json.dumps(GOOD), headers={"content-type": content_type},
                        timeout=30)  # fmt: skip
    assert answer.status_code == 415, answer.text
    _openai_error(answer.content, "unsupported_media_type")
    for accepted in ("application/json", "application/json; charset=utf-8", "Application/JSON"):
        ok = httpx.post(box.a.url + ROUTE, content=json.dumps(GOOD), headers={"content-type": accepted}, timeout=30)
        assert ok.status_code == 200, (accepted, ok.text)


def test_a_wrong_method_is_405_in_openai_shape(box: LlmStack) -> None:
    answer = httpx.get(box.a.url + ROUTE, timeout=30)
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"
    _openai_error(answer.content, "method_not_allowed")


def test_the_gateways_own_routes_keep_their_error_shape(box: LlmStack) -> None:
    answer = httpx.post(box.a.url + "/v1/infer", content=b" " * BIG, timeout=60)
    assert answer.status_code == 413 and answer.json() == {"error": {"code": "BODY_TOO_LARGE", "message": (
        answer.json()["error"]["message"])}}  # fmt: skip
    with pytest.raises(openai.NotFoundError):  # an OpenAI route the gateway does not have: the typed error
        client(box.a.url).embeddings.create(model="tiny", input="x")
