"""The enclave server: frames in, operations out, over TCP (development) or AF_VSOCK.

Each connection may pipeline requests; each request carries an ``id`` echoed in its
response, and up to ``max_in_flight`` requests per connection run concurrently. A bad
request gets an error response and the connection continues; a broken stream (oversized,
truncated or stalled frame) gets an error response and the connection is closed. Either
way every other connection keeps being served. A stream op (``STREAM_OPS``: ``complete``)
answers with several frames under its request's id (``event``: start, chunk..., end, or an
error frame), each sent as it is ready, coalesced with the other replies of the loop pass.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from enclave_app.addresses import Address, listening_socket
from enclave_app.errors import RequestError
from enclave_app.frames import DEFAULT_MAX_FRAME, FrameError, FrameProtocol, decode_message
from enclave_app.llm.service import Send
from enclave_app.receipts.ring import SealerProcessError
from enclave_app.service import EnclaveService
from enclave_app.wire import tensors_from_cbor, tensors_to_cbor

log = logging.getLogger("trustdial.serve")


@dataclass(frozen=True)
class ServerLimits:
    max_frame: int = DEFAULT_MAX_FRAME
    stall_timeout: float = 10.0
    max_in_flight: int = 64


def error_message(
    request_id: Any, code: str, message: str, status: int, param: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if param is not None:
        error["param"] = param
    return {"id": request_id, "ok": False, "error": error}


#: ops answered with several frames (``event``: start / chunk / end), all with the request's id
STREAM_OPS = frozenset({"complete"})


async def stream_dispatch(service: EnclaveService, message: dict[str, Any], send: Send) -> None:
    if service.llm is None:
        raise RequestError("model_not_found", "this enclave serves no language-model bundles", 404, param="model")
    await service.llm.complete(message, send)


async def dispatch(service: EnclaveService, message: dict[str, Any]) -> dict[str, Any]:
    op = message.get("op")
    if op == "models":
        return {"models": service.models()}
    if op == "attest":
        return service.attest(message.get("nonce"))
    if op == "binding":
        return {"binding": service.binding_document}
    if op == "llm_models":
        return {"models": service.llm.describe() if service.llm is not None else []}
    if op == "infer":
        inputs = tensors_from_cbor(message.get("inputs"))
        outputs, receipt = await service.infer(
            message.get("model"), inputs, message.get("nonce"), message.get("poseidon_scale")
        )
        return {"outputs": tensors_to_cbor(outputs), "receipt": receipt}
    raise RequestError("UNKNOWN_OP", f"expected op in models|attest|binding|infer|llm_models|complete, found {op!r}")


class EnclaveServer:
    def __init__(self, service: EnclaveService, limits: ServerLimits | None = None) -> None:
        self.service = service
        self.limits = limits or ServerLimits()
        self._server: asyncio.Server | None = None

    async def start(self, address: Address) -> Address:
        """Start listening; returns the bound address (port 0 resolved)."""
        sock = listening_socket(address)
        self._server = await asyncio.get_running_loop().create_server(lambda: _Connection(self), sock=sock)
        if address.scheme == "tcp":
            host, port = sock.getsockname()[:2]
            return Address("tcp", host, port)
        return address

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def answer(self, body: bytes, send: Send | None = None) -> dict[str, Any] | None:
        """The reply to one frame's body (an error reply for a bad request). A stream op (``STREAM_OPS``)
        sends its frames through ``send`` as they are ready and returns None once the last is out (an error
        before or during the stream is the reply); a stream whose peer went away returns None."""
        request_id: Any = None
        try:
            message = decode_message(body)
            request_id = message.get("id")
            if message.get("op") in STREAM_OPS:
                if send is None:
                    raise RequestError("UNKNOWN_OP", f"op {message.get('op')!r} streams; this transport cannot")
                frame_id = request_id
                stream_send = send

                async def frame(value: dict[str, Any]) -> None:
                    await stream_send({"id": frame_id, "ok": True, **value})

                await stream_dispatch(self.service, message, frame)
                return None
            return {"id": request_id, "ok": True, **(await dispatch(self.service, message))}
        except RequestError as err:
            return error_message(request_id, err.code, err.message, err.status, err.param)
        except SealerProcessError as err:  # no receipt can be made: the response is withheld
            log.error("request %r: %s", request_id, err)
            return error_message(request_id, err.code, f"no receipt: {err.reason}", 503)
        except ConnectionError:  # a stream's peer went away mid-way
            log.info("request %r: peer went away during its stream", request_id)
            return None
        except Exception:  # a bug in one request must not take the connection down silently
            log.exception("request %r failed", request_id)
            return error_message(request_id, "INTERNAL", "the enclave failed to process the request", 500)


class _Connection(FrameProtocol):
    """One peer: each frame is answered by its own task (up to ``max_in_flight`` at a time, then
    reading pauses); replies are written as they are ready, coalesced per pass of the loop."""

    def __init__(self, server: EnclaveServer) -> None:
        super().__init__(max_frame=server.limits.max_frame, stall_timeout=server.limits.stall_timeout)
        self.server = server
        self.tasks: set[asyncio.Task[None]] = set()
        self.paused = False
        self.closing = False  # the stream ended or failed: close once every task has answered

    def frame_received(self, body: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(body))
        self.tasks.add(task)
        task.add_done_callback(self._finished)
        if len(self.tasks) >= self.server.limits.max_in_flight and not self.paused and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True

    async def _answer(self, body: bytes) -> None:
        reply = await self.server.answer(body, self._stream_frame)
        if reply is not None:
            self.send(reply)
        await self.writable()  # a peer that does not read its replies gets no more of them queued

    async def _stream_frame(self, frame: dict[str, Any]) -> None:
        """One frame of a stream, coalesced with the other frames of this loop pass; the stream waits while
        the peer is not reading (other requests' tasks keep running). The peer gone: ``ConnectionError``."""
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("the peer closed the connection")
        self.send(frame)
        await self.writable()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if self.transport is None:
            return
        if self.closing:
            if not self.tasks:
                self.flush()
                self.transport.close()
        elif self.paused and len(self.tasks) < self.server.limits.max_in_flight:
            self.transport.resume_reading()
            self.paused = False

    def stream_failed(self, err: FrameError) -> None:
        self.send(error_message(None, err.code, err.message, err.status))
        self._close_when_answered()

    def keep_open_after_eof(self) -> bool | None:
        self._close_when_answered()
        return True

    def _close_when_answered(self) -> None:
        self.closing = True
        if not self.tasks and self.transport is not None:
            self.flush()
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if exc is not None:
            log.info("connection dropped: %s", exc)
