"""The verifying proxy's own refusals: every request it cannot take gets OpenAI's error shape with a code (never the
standard library's HTML page), a body it did not read closes the connection (it is never parsed as the next
request), request and upstream JSON go through the strict reader, and the proxy keeps serving afterwards."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from llm.conftest import client
from llm.stack import LlmStack

CHAT = [{"role": "user", "content": "What is the capital of France?"}]
BODY = json.dumps({"model": "tiny", "messages": CHAT, "max_tokens": 2}).encode()


def exchange(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read one response (to EOF or its Content-Length); a JSON body is required by the caller."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=30) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, headers, body


def assert_still_serving(box: LlmStack) -> None:
    answer = client(box.proxy_url).chat.completions.create(model="tiny", messages=CHAT, max_tokens=2)  # type: ignore[arg-type]
    assert answer.choices


def post(content_headers: bytes, body: bytes = BODY) -> bytes:
    return b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\n" + content_headers + b"\r\n" + body


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GARBAGE\r\n\r\n", 400, "bad_request"),
        (b"PUT /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nContent-Length: 0\r\n\r\n", 501, "not_implemented"),
        (b"GET /v1/models HTTP/7.0\r\nHost: proxy\r\n\r\n", 505, "http_version_not_supported"),
        (post(b"Content-Type: text/plain\r\nContent-Length: %d\r\n" % len(BODY)), 415, "unsupported_media_type"),
        (post(b"Content-Type: application/json\r\n", b""), 411, "length_required"),
        (post(b"Transfer-Encoding: chunked\r\n", b"%x\r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n"), 411,
         "length_required"),
        (post(b"Content-Length: abc\r\n"), 400, "bad_request"),
        (post(b"Content-Length: \xd9\xa3\r\n"), 400, "bad_request"),  # an Arabic-Indic digit: isdigit() but no count
        (post(b"Content-Length: %d\r\n" % (5 << 20), b""), 413, "body_too_large"),
    ],
    ids=["request-line", "method", "version", "content-type", "no-length", "chunked", "length-text",
         "length-unicode-digit", "too-large"],
)  # fmt: skip
def test_framing_refusals_have_openai_shape_and_a_code(
    box: LlmStack, request_bytes: bytes, status: int, code: str
) -> None:
    got, headers, body = exchange(box.proxy_url, request_bytes)
    assert got == status, body[:300]
    assert headers.get("content-type") == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"] and set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert_still_serving(box)


def test_an_unread_body_is_never_taken_for_the_next_request(box: LlmStack) -> None:
    """A POST to an unknown route is refused before its body is read: the proxy must close the connection, not
    parse the body (here itself a request) as a second request."""
    smuggled = b"GET /v1/models HTTP/1.1\r\nHost: proxy\r\n\r\n"
    request = b"POST /v1/nope HTTP/1.1\r\nHost: proxy\r\nContent-Length: %d\r\n\r\n" % len(smuggled) + smuggled
    parts = urlsplit(box.proxy_url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=30) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 404 ") and received.count(b"HTTP/1.1 ") == 1, received[:400]


def test_the_openai_client_raises_on_a_body_over_the_limit(box: LlmStack) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client(box.proxy_url).chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "x" * (5 << 20)}], max_tokens=2
        )
    assert caught.value.status_code == 413 and caught.value.code == "body_too_large"
    assert_still_serving(box)


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "tiny", "model": "tiny-b", "messages": []}',
        b'{"model": "tiny", "max_tokens": ' + b"9" * 5000 + b', "messages": []}',
        b'{"model": "tiny", "messages": [{"role": "user", "content": "\\ud800"}]}',
        b'{"model": "tiny", "temperature": NaN, "messages": []}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=["duplicate-key", "huge-integer", "lone-surrogate", "nan", "deep"],
)
def test_request_json_goes_through_the_strict_reader(box: LlmStack, body: bytes) -> None:
    answer = httpx.post(box.proxy_url + "/v1/chat/completions", content=body, timeout=30,
                        headers={"Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_json" and "JSON_" in error["message"]
    assert_still_serving(box)


HOSTILE_UPSTREAM = [b"[" * 100_000 + b"]" * 100_000, b'{"id": ' + b"9" * 5000 + b"}", b'{"id": "a", "id": "b"}']


@pytest.mark.parametrize("answer", HOSTILE_UPSTREAM, ids=["deep", "huge-integer", "duplicate-key"])
def test_a_hostile_upstream_answer_is_a_coded_502(box: LlmStack, answer: bytes) -> None:
    """The host between proxy and enclave is untrusted: what it sends is read strictly and refused with a code."""
    box.middlebox.last_type = "application/json"
    box.middlebox.replay_next = answer
    refused = httpx.post(box.proxy_url + "/v1/chat/completions", content=BODY, timeout=30,
                         headers={"Content-Type": "application/json"})  # fmt: skip
    assert refused.status_code == 502, refused.text
    assert refused.json()["error"]["code"].startswith("JSON_")
    assert_still_serving(box)


@pytest.mark.parametrize("answer", HOSTILE_UPSTREAM, ids=["deep", "huge-integer", "duplicate-key"])
def test_a_hostile_stream_event_ends_the_stream_with_its_code(box: LlmStack, answer: bytes) -> None:
    box.middlebox.last_type = "text/event-stream"
    box.middlebox.replay_next = b"data: " + answer + b"\n\ndata: [DONE]\n\n"
    body = json.dumps({"model": "tiny", "messages": CHAT, "max_tokens": 2, "stream": True}).encode()
    with httpx.stream("POST", box.proxy_url + "/v1/chat/completions", content=body, timeout=30,
                      headers={"Content-Type": "application/json"}) as streamed:  # fmt: skip
        events = [line[5:].strip() for line in streamed.iter_lines() if line.startswith("data:")]
    assert len(events) == 1, events  # the error event only: no token, no [DONE]
    assert json.loads(events[0])["error"]["code"].startswith("JSON_")
    assert_still_serving(box)
