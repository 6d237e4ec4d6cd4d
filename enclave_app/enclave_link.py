"""The gateway's side of the frame protocol: one multiplexed connection to the enclave server,
requests matched to responses by ``id``, reconnecting after a failure.

The connection is an asyncio protocol (:class:`~enclave_app.frames.FrameProtocol`): a reply
frame resolves its caller's future as it is parsed, and the requests sent during one pass of the
event loop leave in one write. One connection carries every request (the server answers each
frame in its own task, so requests do not queue behind each other); a pool would only add
connections to keep alive.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import AsyncGenerator
from typing import Any

import cbor2

from enclave_app.addresses import Address
from enclave_app.errors import RequestError
from enclave_app.frames import DEFAULT_MAX_FRAME, HEADER, FrameError, FrameProtocol, decode_message

log = logging.getLogger("trustdial.gateway")
#: what a stream reads when its connection ends before the stream's last frame
CLOSED: dict[str, Any] = {
    "ok": False, "error": {"code": "ENCLAVE_UNAVAILABLE", "message": "the enclave connection closed", "status": 503}
}  # fmt: skip


class _LinkConnection(FrameProtocol):
    def __init__(self, link: EnclaveLink) -> None:
        super().__init__(max_frame=link.max_frame, stall_timeout=link.timeout)
        self.link = link
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        #: streaming requests (``EnclaveLink.stream``): their frames queue here as they are parsed
        self.streams: dict[int, asyncio.Queue[dict[str, Any]]] = {}

    def frame_received(self, body: bytes) -> None:
        try:
            message = decode_message(body)
        except RequestError as err:
            self.stream_failed(FrameError(err.code, err.message, 502))
            return
        request_id = message.get("id")
        stream = self.streams.get(request_id)  # type: ignore[arg-type]
        if stream is not None:
            stream.put_nowait(message)
            return
        future = self.pending.pop(request_id, None)  # type: ignore[arg-type]
        if future is not None and not future.done():
            future.set_result(message)

    def stream_failed(self, err: FrameError) -> None:
        log.warning("enclave connection ended: %s", err.message)
        if self.transport is not None:
            self.transport.close()
        self._fail_pending()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if exc is not None:
            log.warning("enclave connection ended: %s", exc)
        self._fail_pending()

    def _fail_pending(self) -> None:
        if self.link.connection is self:
            self.link.connection = None
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(RequestError("ENCLAVE_UNAVAILABLE", "the enclave connection closed", 503))
        streams, self.streams = self.streams, {}
        for queue in streams.values():
            queue.put_nowait(CLOSED)


class EnclaveLink:
    def __init__(self, address: Address, *, timeout: float = 30.0, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.address = address
        self.timeout = timeout
        self.max_frame = max_frame
        self._ids = itertools.count(1)
        self.connection: _LinkConnection | None = None
        self._connect_lock = asyncio.Lock()

    async def _connect(self) -> _LinkConnection:
        loop = asyncio.get_running_loop()
        if self.address.scheme == "tcp":
            _, protocol = await loop.create_connection(
                lambda: _LinkConnection(self), self.address.host, self.address.port
            )
        else:
            sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, (self.address.cid, self.address.port))
            except BaseException:
                sock.close()
                raise
            _, protocol = await loop.create_connection(lambda: _LinkConnection(self), sock=sock)
        return protocol

    async def _ensure(self) -> _LinkConnection:
        connection = self.connection
        if connection is not None and connection.transport is not None and not connection.transport.is_closing():
            return connection
        async with self._connect_lock:
            connection = self.connection
            if connection is None or connection.transport is None or connection.transport.is_closing():
                try:
                    connection = await asyncio.wait_for(self._connect(), self.timeout)
                except (OSError, TimeoutError) as err:
                    raise RequestError(
                        "ENCLAVE_UNAVAILABLE", f"cannot reach the enclave at {self.address}: {err}", 503
                    ) from err
                self.connection = connection
            return connection

    async def call(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request; the successful reply, or :class:`RequestError` with the enclave's code."""
        connection = await self._ensure()
        request_id = next(self._ids)
        body = cbor2.dumps({**message, "id": request_id})
        if len(body) > self.max_frame:
            raise FrameError("BODY_TOO_LARGE", f"request of {len(body) + 4} bytes exceeds the enclave frame limit", 413)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        connection.pending[request_id] = future
        timer = loop.call_later(self.timeout, _expire, future, self.timeout)
        try:
            connection.send_frame(HEADER.pack(len(body)) + body)
            reply = await future
        finally:
            timer.cancel()
            connection.pending.pop(request_id, None)
        if not reply.get("ok"):
            raise _refusal(reply)
        return reply

    async def stream(self, message: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """Send one streaming request (op ``complete``); yield its frames until the one with ``event: end``.
        An error frame raises :class:`RequestError` with the enclave's code (and ``param``); no frame for
        ``timeout`` seconds: ``ENCLAVE_TIMEOUT``. The frames share the one connection with every other request:
        they are queued for this stream as they are parsed, so a slow reader of one stream holds up no other."""
        connection = await self._ensure()
        request_id = next(self._ids)
        body = cbor2.dumps({**message, "id": request_id})
        if len(body) > self.max_frame:
            raise FrameError("BODY_TOO_LARGE", f"request of {len(body) + 4} bytes exceeds the enclave frame limit", 413)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        connection.streams[request_id] = queue
        try:
            connection.send_frame(HEADER.pack(len(body)) + body)
            while True:
                if queue.empty():
                    try:
                        reply = await asyncio.wait_for(queue.get(), self.timeout)
                    except TimeoutError as err:
                        reason = f"no frame from the enclave for {self.timeout} s"
                        raise RequestError("ENCLAVE_TIMEOUT", reason, 504) from err
                else:
                    reply = queue.get_nowait()
                if not reply.get("ok"):
                    raise _refusal(reply)
                yield reply
                if reply.get("event") == "end":
                    return
        finally:
            connection.streams.pop(request_id, None)

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None and connection.transport is not None:
            connection.transport.close()


def _expire(future: asyncio.Future[dict[str, Any]], timeout: float) -> None:
    if not future.done():
        future.set_exception(RequestError("ENCLAVE_TIMEOUT", f"the enclave did not answer within {timeout} s", 504))


def _refusal(reply: dict[str, Any]) -> RequestError:
    """The enclave's error reply as the error the gateway answers with (code, message, status, param)."""
    error = reply.get("error")
    if not isinstance(error, dict):
        error = {}
    param = error.get("param")
    return RequestError(
        str(error.get("code", "ENCLAVE_ERROR")), str(error.get("message", "")), int(error.get("status", 502)),
        param=param if isinstance(param, str) else None,
    )  # fmt: skip
