"""The gateway's HTTP/1.1 server (``enclave_app.http_server``) on a real loopback socket, spoken to
with raw bytes: framing (Content-Length, chunked, Expect: 100-continue, pipelining, keep-alive)
against what RFC 9112 says the request means, and every malformed or oversized request refused
with a status and a code while the server keeps serving. The handler echoes what it was given,
so the assertions compare the server's reading of the bytes with the test's own."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass

import pytest

from enclave_app.addresses import tcp_listener
from enclave_app.http_server import HttpError, HttpLimits, HttpRequest, HttpResponse, error_response, serve_http

LIMITS = HttpLimits(max_body=1000, body_timeout=0.5, keep_alive=1.5, max_head=2048)


#: the streamed answer (/stream) waits here after its first piece until the test has read that piece
GATE: dict[str, asyncio.Event] = {}


async def _pieces(request: HttpRequest, fail: bool) -> AsyncGenerator[bytes, None]:
    yield b"data: first\n\n"
    gate = GATE.setdefault(request.query, asyncio.Event())
    await gate.wait()
    yield b""  # an empty piece is not sent (it would end a chunked body)
    yield request.body
    if fail:
        raise RuntimeError("the producer broke")
    yield b"data: [DONE]\n\n"


def _errors(path: str | None, err: HttpError) -> HttpResponse:
    """The server's own errors, with the path it gave the renderer in a header (JSON: null when none)."""
    return error_response(err.status, err.code, err.message, (("x-error-path", json.dumps(path)),))


async def _echo(request: HttpRequest) -> HttpResponse:
    if request.path == "/boom":
        raise RuntimeError("a bug in the handler")
    if request.path in ("/stream", "/broken"):
        return HttpResponse(
            200, b"", content_type="text/event-stream", stream=_pieces(request, request.path == "/broken")
        )
    body = {"method": request.method, "path": request.path, "query": request.query, "body": request.body.decode()}
    return HttpResponse(200, json.dumps(body).encode())


@dataclass
class Server:
    port: int
    loop: asyncio.AbstractEventLoop


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    loop = asyncio.new_event_loop()
    sock = tcp_listener("127.0.0.1", 0)
    sock.setblocking(False)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve_http(_echo, sock, LIMITS, _errors))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield Server(sock.getsockname()[1], loop)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One response read from ``sock`` (left-over bytes stay in ``buffer``)."""
    while b"\r\n\r\n" not in buffer:
        part = sock.recv(65536)
        if not part:
            raise ConnectionError("closed before a response head")
        buffer += part
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        part = sock.recv(65536)
        if not part:
            raise ConnectionError("closed inside a response body")
        rest += part
    buffer[:] = rest[length:]
    return status, headers, rest[:length]


def _exchange(server: Server, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    with _connect(server) as sock:
        sock.sendall(raw)
        return _response(sock, bytearray())


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _code(body: bytes) -> str:
    return str(json.loads(body)["error"]["code"])


def test_a_content_length_body_and_a_query_are_read_as_sent(server: Server) -> None:
    status, _, body = _exchange(
        server, b"POST /v1/x%2Fy?a=1&b=%20 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    )
    assert status == 200
    assert json.loads(body) == {"method": "POST", "path": "/v1/x/y", "query": "a=1&b=%20", "body": "hello"}


def test_a_chunked_body_is_reassembled_with_extensions_and_trailers_ignored(server: Server) -> None:
    raw = (
        b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    status, _, body = _exchange(server, raw)
    assert status == 200
    assert json.loads(body)["body"] == "hello 0123456789"


def test_pipelined_requests_are_answered_in_order_on_one_connection(server: Server) -> None:
    raw = b"".join(
        f"POST /p{i} HTTP/1.1\r\nHost: h\r\nContent-Length: {len(str(i))}\r\n\r\n{i}".encode() for i in range(20)
    )
    with _connect(server) as sock:
        sock.sendall(raw)
        buffer = bytearray()
        answers = [json.loads(_response(sock, buffer)[2]) for _ in range(20)]
    assert [(a["path"], a["body"]) for a in answers] == [(f"/p{i}", str(i)) for i in range(20)]


def test_expect_100_continue_is_answered_before_the_body_is_sent(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        interim = sock.recv(1024)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"abc")
        status, _, body = _response(sock, bytearray(interim[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]))
    assert (status, json.loads(body)["body"]) == (200, "abc")


def test_connection_close_and_http_1_0_close_after_the_answer(server: Server) -> None:
    for raw in (b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", b"GET /a HTTP/1.0\r\n\r\n"):
        with _connect(server) as sock:
            sock.sendall(raw)
            status, headers, _ = _response(sock, bytearray())
            assert (status, headers.get("connection")) == (200, "close")
            assert _closed(sock)


def test_head_gets_the_headers_without_the_body(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(b"HEAD /h HTTP/1.1\r\nHost: h\r\n\r\nGET /g HTTP/1.1\r\nHost: h\r\n\r\n")
        data = b""
        while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"}"):
            data += sock.recv(65536)
    first, _, second = data.partition(b"\r\n\r\n")
    assert b"content-length:" in first
    assert second.startswith(b"HTTP/1.1 200")  # no body between the HEAD answer and the next one


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"GARBAGE\r\n\r\n", 400, "BAD_REQUEST"),
        (b"GET http://elsewhere/ HTTP/1.1\r\n\r\n", 400, "BAD_REQUEST"),
        (b"GET / HTTP/2.0\r\n\r\n", 505, "HTTP_VERSION_NOT_SUPPORTED"),
        (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "BAD_REQUEST"),
        (b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400, "BAD_REQUEST"),
        (b"GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n", 400, "BAD_REQUEST"),
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "BAD_REQUEST"),
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400, "BAD_REQUEST"),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "BAD_REQUEST"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "NOT_IMPLEMENTED"),
        (b"POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", 413, "BODY_TOO_LARGE"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3E9\r\n", 413, "BODY_TOO_LARGE"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "BAD_REQUEST"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 400, "BAD_REQUEST"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 3000 + b"\r\n\r\n", 431, "HEADERS_TOO_LARGE"),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(101)) + b"\r\n", 431, "HEADERS_TOO_LARGE"),
    ],
)
def test_malformed_or_oversized_requests_are_refused_and_the_connection_closed(
    server: Server, raw: bytes, status: int, code: str
) -> None:
    with _connect(server) as sock:
        sock.sendall(raw)
        answer, headers, body = _response(sock, bytearray())
        assert (answer, _code(body), headers.get("connection")) == (status, code, "close")
        assert _closed(sock)
    assert _exchange(server, b"GET /still HTTP/1.1\r\nHost: h\r\n\r\n")[0] == 200


@pytest.mark.parametrize(
    ("raw", "status", "path"),
    [
        (b"GARBAGE\r\n\r\n", 400, None),
        (b"GET http://elsewhere/ HTTP/1.1\r\n\r\n", 400, None),
        (b"\r\nPOST /v1/a%20b?q=1 HTTP/2.0\r\n\r\n", 505, "/v1/a b"),
        (b"POST /v1/h HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "/v1/h"),
        (b"POST /v1/h HTTP/1.1\r\nX: " + b"a" * 3000 + b"\r\n\r\n", 431, "/v1/h"),
        (b"POST /v1/h HTTP/1.1\r\nX: " + b"a" * 3000, 431, "/v1/h"),  # no end of head in sight
        (b"POST /v1/b HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", 413, "/v1/b"),
        (b"POST /v1/b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "/v1/b"),
        (b"POST /v1/b HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 408, "/v1/b"),
        (b"POST /v1/h HTTP/1.1\r\nHost:", 408, "/v1/h"),
        (b"GET /boom HTTP/1.1\r\nHost: h\r\n\r\n", 500, "/boom"),
    ],
)
def test_the_error_renderer_is_given_the_path_wherever_it_could_be_read(
    server: Server, raw: bytes, status: int, path: str | None
) -> None:
    """So that each API can answer the server's own errors in its shape (the gateway: OpenAI's on its routes)."""
    with _connect(server) as sock:
        sock.sendall(raw)
        answer, headers, _ = _response(sock, bytearray())
    assert (answer, json.loads(headers["x-error-path"])) == (status, path)
    assert _exchange(server, b"GET /still HTTP/1.1\r\nHost: h\r\n\r\n")[0] == 200


def test_a_request_stalled_mid_body_gets_408(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(b"POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
        status, _, body = _response(sock, bytearray())
    assert (status, _code(body)) == (408, "REQUEST_TIMEOUT")


def test_a_request_stalled_mid_head_gets_408(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /s HTTP/1.1\r\nHost:")
        status, _, body = _response(sock, bytearray())
    assert (status, _code(body)) == (408, "REQUEST_TIMEOUT")


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_time(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /k HTTP/1.1\r\nHost: h\r\n\r\n")
        assert _response(sock, bytearray())[0] == 200
        started = time.monotonic()
        assert _closed(sock)
        assert time.monotonic() - started >= LIMITS.keep_alive - 0.2


def test_the_connection_ending_inside_a_body_is_a_400(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(b"POST /t HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
        sock.shutdown(socket.SHUT_WR)
        status, _, body = _response(sock, bytearray())
    assert (status, _code(body)) == (400, "BAD_REQUEST")


def _open(server: Server, key: str) -> None:
    def release() -> None:
        GATE.setdefault(key, asyncio.Event()).set()

    server.loop.call_soon_threadsafe(release)


def _dechunk(sock: socket.socket, buffer: bytearray) -> list[bytes]:
    """A chunked body read by RFC 9112 §7.1 (size line in hex, data, CRLF; a zero size ends it)."""
    chunks = []
    while True:
        while b"\r\n" not in buffer:
            buffer += sock.recv(65536)
        line, _, rest = bytes(buffer).partition(b"\r\n")
        size = int(line, 16)
        while len(rest) < size + 2:
            rest += sock.recv(65536)
        assert rest[size : size + 2] == b"\r\n"
        buffer[:] = rest[size + 2 :]
        if size == 0:
            return chunks
        chunks.append(rest[:size])


def _head(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str]]:
    while b"\r\n\r\n" not in buffer:
        part = sock.recv(65536)
        if not part:
            raise ConnectionError("closed before a response head")
        buffer += part
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    lines = head.decode("latin-1").split("\r\n")
    return int(lines[0].split(" ")[1]), {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}


def test_a_streamed_answer_is_chunked_each_piece_sent_as_produced_and_the_connection_kept(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(b"POST /stream?one HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\ndata: x\n")
        buffer = bytearray()
        status, headers = _head(sock, buffer)
        assert (status, headers["transfer-encoding"], headers["content-type"]) == (200, "chunked", "text/event-stream")
        assert "content-length" not in headers
        while b"first" not in buffer:  # the first event arrives while the producer is still waiting
            buffer += sock.recv(65536)
        assert bytes(buffer) == b"d\r\ndata: first\n\n\r\n"
        _open(server, "one")
        assert _dechunk(sock, buffer) == [b"data: first\n\n", b"data: x\n", b"data: [DONE]\n\n"]
        sock.sendall(b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")  # the same connection serves on
        assert json.loads(_response(sock, buffer)[2])["path"] == "/after"


def test_a_streamed_answer_to_http_1_0_is_unframed_and_ends_with_the_connection(server: Server) -> None:
    _open(server, "old")
    with _connect(server) as sock:
        sock.sendall(b"POST /stream?old HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi")
        buffer = bytearray()
        status, headers = _head(sock, buffer)
        assert (status, headers.get("connection"), "transfer-encoding" in headers) == (200, "close", False)
        while part := sock.recv(65536):
            buffer += part
    assert bytes(buffer) == b"data: first\n\nhidata: [DONE]\n\n"


def test_a_stream_that_fails_midway_is_cut_without_the_last_chunk_and_the_server_serves_on(server: Server) -> None:
    _open(server, "cut")
    with _connect(server) as sock:
        sock.sendall(b"POST /broken?cut HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi")
        buffer = bytearray()
        assert _head(sock, buffer)[0] == 200
        while part := sock.recv(65536):
            buffer += part
    assert bytes(buffer) == b"d\r\ndata: first\n\n\r\n2\r\nhi\r\n"  # no terminating zero-size chunk
    assert _exchange(server, b"GET /still HTTP/1.1\r\nHost: h\r\n\r\n")[0] == 200
