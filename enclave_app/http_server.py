"""A small, strict HTTP/1.1 server for the gateway: an asyncio protocol, no framework.

The gateway is a pass-through with four JSON routes; a general web framework cost it more CPU per
request than the enclave's inference (bench/served.py, docs/receipts.md §11). This module parses
exactly what those routes need and refuses the rest with a status and a stable code:

* request line ``METHOD SP /target SP HTTP/1.1`` (or ``HTTP/1.0``), header lines ``name: value``
  with token names and no control characters, at most ``max_head`` bytes and ``MAX_HEADERS``
  lines (``400 BAD_REQUEST`` / ``431 HEADERS_TOO_LARGE``; ``505`` for another version);
* a body framed by ``Content-Length`` or ``Transfer-Encoding: chunked`` (both at once:
  ``400``, request smuggling; another transfer coding: ``501``), at most ``max_body`` bytes
  (``413 BODY_TOO_LARGE``, declared lengths refused before reading), with a per-chunk deadline
  (``408 REQUEST_TIMEOUT`` once no byte of a started request arrived for ``body_timeout`` s);
* ``Expect: 100-continue`` answered before the body is read;
* keep-alive (HTTP/1.1 default, ``Connection: close`` honoured; HTTP/1.0 only with
  ``Connection: keep-alive``), idle connections closed after ``keep_alive`` s, pipelined
  requests answered in order, one at a time;
* a streamed answer (``HttpResponse.stream``, e.g. server-sent events) goes out with
  ``Transfer-Encoding: chunked``, one chunk per piece, each written as it is produced (to an
  HTTP/1.0 client: unframed, then the connection is closed); while the peer does not read, the
  stream waits.

Errors the server answers itself (framing, and a handler that failed) are rendered by an ``ErrorRenderer``
given the request's path where it could be read, so that each API answers in its own error shape (the
gateway's OpenAI-compatible routes in OpenAI's).

After a framing error the response carries ``Connection: close`` and the connection is closed
once the peer stopped sending (bytes are read and dropped for up to ``body_timeout`` s, so the
peer sees the response rather than a reset). Every other connection keeps being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from enum import IntEnum
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from enclave_app.read_buffer import PreallocatedReads
from enclave_app.write_flow import WriteFlow

log = logging.getLogger("trustdial.gateway")

MAX_HEADERS = 100
#: bytes of a size line (with extensions) or of trailers in a chunked body
MAX_CHUNK_LINE = 4096
#: seconds an answered connection keeps dropping what the peer still sends before it is closed
DISCARD_LINGER = 2.0
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"/[\x21-\x7e]*")
_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
_DIGITS = re.compile(r"[0-9]{1,18}")
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(frozen=True)
class HttpLimits:
    max_body: int = 4 * 1024 * 1024
    body_timeout: float = 10.0
    keep_alive: float = 30.0
    max_head: int = 16 * 1024


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # percent-decoded
    query: str  # as sent
    headers: dict[str, str]  # lower-case names; repeated fields joined with ", "
    body: bytes
    version: str = "HTTP/1.1"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    #: a body produced piece by piece (``body`` is then unused): sent chunked, each piece as it comes
    stream: AsyncGenerator[bytes, None] | None = None


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class HttpError(Exception):
    """A request that cannot be framed or parsed: answered, then the connection is closed."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def error_response(status: int, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()) -> HttpResponse:
    return HttpResponse(status, error_body(code, message), headers=headers)


#: the answer to an error the server found itself, given the request's path (percent-decoded; None when not even
#: the request line could be read)
ErrorRenderer = Callable[[str | None, HttpError], HttpResponse]


def plain_errors(path: str | None, err: HttpError) -> HttpResponse:
    """The default ``ErrorRenderer``: ``{"error": {"code", "message"}}`` whatever the path."""
    return error_response(err.status, err.code, err.message)


def _path_of(target: str) -> str:
    return unquote(target.partition("?")[0])


def _peek_path(buffer: bytes | bytearray) -> str | None:
    """The path of the request line at the start of ``buffer``, if it has a well-formed target."""
    start = 0
    while buffer.startswith(b"\r\n", start):
        start += 2
    end = buffer.find(b"\r\n", start)
    line = bytes(buffer[start : end if end >= 0 else start + 8192])
    parts = line.split(b" ")
    if len(parts) >= 2 and _TARGET.fullmatch(parts[1]):
        return _path_of(parts[1].decode("ascii"))
    return None


class _State(IntEnum):
    HEAD = 0  # waiting for (the rest of) a request head
    BODY = 1  # reading a Content-Length body
    CHUNK_SIZE = 2  # chunked: a size line
    CHUNK_DATA = 3
    CHUNK_END = 4  # the CRLF after a chunk's data
    TRAILERS = 5
    HANDLING = 6  # a complete request is with the handler; later bytes wait in the buffer
    DISCARD = 7  # answered with an error; dropping what the peer still sends, then closing


_REASONS = {status.value: status.phrase for status in HTTPStatus}
_date_cache: list[Any] = [0, b""]


def _date() -> bytes:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0], _date_cache[1] = now, formatdate(now, usegmt=True).encode("ascii")
    return _date_cache[1]  # type: ignore[no-any-return]


def _parse_head(head: bytes, max_headers: int) -> tuple[str, str, bytes, dict[str, str]]:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _TARGET.fullmatch(parts[1]):
        raise HttpError(400, "BAD_REQUEST", "malformed request line")
    method, target, version = parts
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise HttpError(505, "HTTP_VERSION_NOT_SUPPORTED", "expected HTTP/1.1 or HTTP/1.0")
    if len(lines) - 1 > max_headers:
        raise HttpError(431, "HEADERS_TOO_LARGE", f"more than {max_headers} header fields")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name):  # also refuses obs-fold (a line starting with a space)
            raise HttpError(400, "BAD_REQUEST", "malformed header field")
        value = value.strip(b" \t")
        if _CTL.search(value):
            raise HttpError(400, "BAD_REQUEST", "control character in a header field")
        key = name.decode("ascii").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return method.decode("ascii"), target.decode("ascii"), version, headers


class HttpProtocol(WriteFlow, PreallocatedReads):
    """One client connection; ``handler`` answers each complete request."""

    def __init__(self, handler: Handler, limits: HttpLimits, errors: ErrorRenderer = plain_errors) -> None:
        self.handler = handler
        self.limits = limits
        self.errors = errors
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.state = _State.HEAD
        self._last_byte = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._paused = False
        self._request: tuple[str, str, bytes, dict[str, str]] | None = None
        self._keep_alive = True
        self._length = 0  # Content-Length body: bytes still expected; chunked: bytes in the current chunk
        self._body: list[bytes] = []
        self._body_size = 0
        self._discarded = 0
        self._eof = False

    # --- connection events ---------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._touch()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()  # nobody left to answer
        self.release_writers()
        self.transport = None

    def data_received(self, data: bytes | memoryview) -> None:
        self._last_byte = time.monotonic()
        if self.state == _State.DISCARD:
            self._discarded += len(data)
            if self._discarded > self.limits.max_body + self.limits.max_head:
                self._close()
            return
        self.buffer += data
        if self.state == _State.HANDLING:
            if len(self.buffer) > self.limits.max_head + self.limits.max_body and not self._paused:
                assert self.transport is not None
                self.transport.pause_reading()  # a pipelining client waits for its answers
                self._paused = True
            return
        self._advance()

    def eof_received(self) -> bool | None:
        self._eof = True
        if self.state in (_State.HEAD, _State.DISCARD) and not self.buffer:
            return None  # close
        if self.state != _State.HANDLING:
            self._fail(HttpError(400, "BAD_REQUEST", "the connection ended inside a request"))
        return True  # keep the write side open for the answer being prepared

    # --- timers --------------------------------------------------------------------------------------------------

    def _touch(self) -> None:
        self._last_byte = time.monotonic()
        if self._timer is None:
            self._schedule(self.limits.keep_alive)

    def _schedule(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _deadline_soon(self) -> None:
        """Inside a request the deadline is body_timeout after the last byte: pull the timer in if it is later."""
        timer = self._timer
        limit = self.limits.body_timeout
        if timer is None or timer.when() > asyncio.get_running_loop().time() + limit:
            if timer is not None:
                timer.cancel()
            self._schedule(limit)

    def _on_timer(self) -> None:
        self._timer = None
        if self.transport is None:
            return
        if self.state == _State.HANDLING:
            self._schedule(self.limits.keep_alive)  # the handler has its own deadline (the enclave's)
            return
        idle = time.monotonic() - self._last_byte
        waiting = self.state == _State.HEAD and not self.buffer
        if self.state == _State.DISCARD:
            limit = min(self.limits.body_timeout, DISCARD_LINGER)
        else:
            limit = self.limits.keep_alive if waiting else self.limits.body_timeout
        if idle < limit:
            self._schedule(limit - idle)
        elif waiting or self.state == _State.DISCARD:
            self._close()
        else:
            self._fail(HttpError(408, "REQUEST_TIMEOUT", f"no request bytes for {self.limits.body_timeout} s"))

    # --- parsing -------------------------------------------------------------------------------------------------

    def _advance(self) -> None:
        try:
            self._parse()
        except HttpError as err:
            self._fail(err)

    def _parse(self) -> None:
        buffer = self.buffer
        limits = self.limits
        while True:
            state = self.state
            if state == _State.HEAD:
                while buffer.startswith(b"\r\n"):  # empty lines before a request line are ignored
                    del buffer[:2]
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > limits.max_head:
                        raise HttpError(431, "HEADERS_TOO_LARGE", f"request head over {limits.max_head} bytes")
                    if buffer:
                        self._deadline_soon()
                    return
                if end > limits.max_head:
                    raise HttpError(431, "HEADERS_TOO_LARGE", f"request head over {limits.max_head} bytes")
                request = _parse_head(bytes(buffer[:end]), MAX_HEADERS)
                del buffer[: end + 4]
                self._start_body(request)
                if self.state != _State.BODY or self._length:
                    self._deadline_soon()
            elif state == _State.BODY:
                take = min(self._length, len(buffer))
                if take:
                    self._body.append(bytes(buffer[:take]))
                    del buffer[:take]
                    self._length -= take
                if self._length:
                    return
                self._dispatch()
                return
            elif state == _State.CHUNK_SIZE:
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > MAX_CHUNK_LINE:
                        raise HttpError(400, "BAD_REQUEST", "chunk size line too long")
                    return
                size = bytes(buffer[:end]).partition(b";")[0].strip(b" \t")
                if not _HEX.fullmatch(size):
                    raise HttpError(400, "BAD_REQUEST", "malformed chunk size")
                del buffer[: end + 2]
                self._length = int(size, 16)
                if self._length == 0:
                    self.state = _State.TRAILERS
                    continue
                self._body_size += self._length
                if self._body_size > limits.max_body:
                    raise HttpError(413, "BODY_TOO_LARGE", f"body exceeds the limit of {limits.max_body} bytes")
                self.state = _State.CHUNK_DATA
            elif state == _State.CHUNK_DATA:
                take = min(self._length, len(buffer))
                if take:
                    self._body.append(bytes(buffer[:take]))
                    del buffer[:take]
                    self._length -= take
                if self._length:
                    return
                self.state = _State.CHUNK_END
            elif state == _State.CHUNK_END:
                if len(buffer) < 2:
                    return
                if buffer[:2] != b"\r\n":
                    raise HttpError(400, "BAD_REQUEST", "chunk data not followed by CRLF")
                del buffer[:2]
                self.state = _State.CHUNK_SIZE
            elif state == _State.TRAILERS:
                if buffer.startswith(b"\r\n"):
                    del buffer[:2]
                else:
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        if len(buffer) > MAX_CHUNK_LINE:
                            raise HttpError(431, "HEADERS_TOO_LARGE", "trailers too long")
                        return
                    del buffer[: end + 4]  # trailer fields are not used
                self._dispatch()
                return
            else:
                return

    def _start_body(self, request: tuple[str, str, bytes, dict[str, str]]) -> None:
        _, _, version, headers = request
        self._request = request
        connection = headers.get("connection", "").lower()
        if version == b"HTTP/1.1":
            self._keep_alive = "close" not in connection
        else:
            self._keep_alive = "keep-alive" in connection
        self._body, self._body_size = [], 0
        coding = headers.get("transfer-encoding")
        declared = headers.get("content-length")
        if coding is not None:
            if declared is not None:
                raise HttpError(400, "BAD_REQUEST", "both Content-Length and Transfer-Encoding")
            if coding.strip().lower() != "chunked":
                raise HttpError(501, "NOT_IMPLEMENTED", f"transfer coding {coding!r} is not supported")
            self._continue(headers)
            self.state = _State.CHUNK_SIZE
            return
        length = 0
        if declared is not None:
            values = {v.strip() for v in declared.split(",")}
            if len(values) != 1 or not _DIGITS.fullmatch(next(iter(values))):
                raise HttpError(400, "BAD_REQUEST", "malformed Content-Length")
            length = int(next(iter(values)))
        if length > self.limits.max_body:
            raise HttpError(
                413, "BODY_TOO_LARGE", f"body of {length} bytes exceeds the limit of {self.limits.max_body}"
            )
        self._length = length
        if length:
            self._continue(headers)
        self.state = _State.BODY

    def _continue(self, headers: dict[str, str]) -> None:
        if headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
            self.transport.write(CONTINUE)

    def _dispatch(self) -> None:
        assert self._request is not None
        method, target, version, headers = self._request
        path, _, query = target.partition("?")
        request = HttpRequest(
            method, unquote(path), query, headers, b"".join(self._body), version.decode("ascii")
        )
        self._request, self._body = None, []
        self.state = _State.HANDLING
        self._task = asyncio.get_running_loop().create_task(self._answer(request, self._keep_alive))

    # --- answering -----------------------------------------------------------------------------------------------

    async def _answer(self, request: HttpRequest, keep_alive: bool) -> None:
        try:
            response = await self.handler(request)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in one request must not take the connection down silently
            log.exception("%s %s failed", request.method, request.path)
            failed = HttpError(500, "INTERNAL", "the gateway failed to process the request")
            response = self.errors(request.path, failed)
        if self.transport is None:
            return
        keep_alive = keep_alive and not self._eof
        if response.stream is not None:
            chunked = request.version == "HTTP/1.1"  # an HTTP/1.0 body ends with the connection
            keep_alive = await self._write_stream(
                response, keep_alive and chunked, chunked=chunked, head_only=request.method == "HEAD"
            )
            if self.transport is None:
                return
        else:
            self._write(response, keep_alive, head_only=request.method == "HEAD")
        if not keep_alive:
            self._close_after_write()
            return
        await self.writable()  # the peer is not reading: answer the next request once it does
        if self.transport is None:
            return
        self.state = _State.HEAD
        self._last_byte = time.monotonic()
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        if self.buffer:
            self._advance()

    def _write(self, response: HttpResponse, keep_alive: bool, *, head_only: bool = False) -> None:
        assert self.transport is not None
        fields = [*response.headers, *(() if keep_alive else (("connection", "close"),))]
        extra = "".join(f"{name}: {value}\r\n" for name, value in fields)
        head = (
            f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}\r\n"
            f"content-type: {response.content_type}\r\ncontent-length: {len(response.body)}\r\n{extra}"
        ).encode("latin-1")
        head += b"date: " + _date() + b"\r\n\r\n"
        self.transport.write(head if head_only else head + response.body)

    async def _write_stream(
        self, response: HttpResponse, keep_alive: bool, *, chunked: bool, head_only: bool = False
    ) -> bool:
        """Send a streamed answer; whether the connection may serve another request afterwards. ``chunked``
        (HTTP/1.1 peers): one chunk per piece; otherwise the body ends with the connection (``keep_alive``
        must then be false). A stream that fails midway is logged and the connection closed without the
        last chunk, so the peer sees a cut body, not a complete one."""
        assert self.transport is not None and response.stream is not None
        fields = [*response.headers, *((("transfer-encoding", "chunked"),) if chunked else ())]
        if not keep_alive:
            fields.append(("connection", "close"))
        extra = "".join(f"{name}: {value}\r\n" for name, value in fields)
        head = (
            f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}\r\n"
            f"content-type: {response.content_type}\r\n{extra}"
        ).encode("latin-1")
        self.transport.write(head + b"date: " + _date() + b"\r\n\r\n")
        async with contextlib.aclosing(response.stream) as pieces:
            if head_only:
                return keep_alive
            try:
                async for piece in pieces:
                    if self.transport is None:
                        return False
                    if piece:
                        self.transport.write(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
                    await self.writable()  # the peer is not reading: the stream waits
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one stream must not take the server down; the peer sees a cut body
                log.exception("streamed answer failed")
                self._close()
                return False
        if self.transport is None:
            return False
        if chunked:
            self.transport.write(b"0\r\n\r\n")
        return keep_alive

    def _fail(self, err: HttpError) -> None:
        """Answer a request that cannot be read, then drop what the peer still sends and close."""
        if self.transport is None or self.state == _State.DISCARD:
            return
        path = _path_of(self._request[1]) if self._request is not None else _peek_path(self.buffer)
        self.state = _State.DISCARD
        self.buffer.clear()
        self._write(self.errors(path, err), keep_alive=False)
        self._close_after_write()

    def _close_after_write(self) -> None:
        self.state = _State.DISCARD
        self.buffer.clear()
        if self.transport is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self.transport.write_eof()  # the answer is complete; the peer may still be sending
        self._last_byte = time.monotonic()
        if self._timer is not None:
            self._timer.cancel()
        self._schedule(min(self.limits.body_timeout, DISCARD_LINGER))

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def serve_http(
    handler: Handler, sock: socket.socket, limits: HttpLimits, errors: ErrorRenderer = plain_errors
) -> asyncio.Server:
    """Start serving ``handler`` on the listening socket ``sock``; ``errors`` renders the server's own errors."""
    return await asyncio.get_running_loop().create_server(lambda: HttpProtocol(handler, limits, errors), sock=sock)
