"""The enclave server: frames in, operations out, over TCP (development) or AF_VSOCK.

Each connection may pipeline requests; each request carries an ``id`` echoed in its
response, and up to ``max_in_flight`` requests per connection run concurrently. A bad
request gets an error response and the connection continues; a broken stream (oversized,
truncated or stalled frame) gets an error response and the connection is closed. Either
way every other connection keeps being served.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from enclave_app.addresses import Address, listening_socket
from enclave_app.errors import RequestError
from enclave_app.frames import DEFAULT_MAX_FRAME, FrameError, FrameProtocol, decode_message
from enclave_app.receipts.ring import SealerProcessError
from enclave_app.service import EnclaveService
from enclave_app.wire import tensors_from_cbor, tensors_to_cbor

log = logging.getLogger("trustdial.serve")


@dataclass(frozen=True)
class ServerLimits:
    max_frame: int = DEFAULT_MAX_FRAME
    stall_timeout: float = 10.0
    max_in_flight: int = 64


def error_message(request_id: Any, code: str, message: str, status: int) -> dict[str, Any]:
    return {"id": request_id, "ok": False, "error": {"code": code, "message": message, "status": status}}


async def dispatch(service: EnclaveService, message: dict[str, Any]) -> dict[str, Any]:
    op = message.get("op")
    if op == "models":
        return {"models": service.models()}
    if op == "attest":
        return service.attest(message.get("nonce"))
    if op == "binding":
        return {"binding": service.binding_document}
    if op == "infer":
        inputs = tensors_from_cbor(message.get("inputs"))
        outputs, receipt = await service.infer(
            message.get("model"), inputs, message.get("nonce"), message.get("poseidon_scale")
        )
        return {"outputs": tensors_to_cbor(outputs), "receipt": receipt}
    if op == "generate":
        completion, receipt = await service.generate(
            message.get("model"),
            message.get("prompt_ids"),
            message.get("max_new_tokens"),
            message.get("eos_token_id"),
            message.get("nonce"),
        )
        return {"completion_ids": completion, "receipt": receipt}
    raise RequestError("UNKNOWN_OP", f"expected op in models|attest|binding|infer|generate, found {op!r}")


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

    async def answer(self, body: bytes) -> dict[str, Any]:
        """The reply to one frame's body (an error reply for a bad request)."""
        request_id: Any = None
        try:
            message = decode_message(body)
            request_id = message.get("id")
            return {"id": request_id, "ok": True, **(await dispatch(self.service, message))}
        except RequestError as err:
            return error_message(request_id, err.code, err.message, err.status)
        except SealerProcessError as err:  # no receipt can be made: the response is withheld
            log.error("request %r: %s", request_id, err)
            return error_message(request_id, err.code, f"no receipt: {err.reason}", 503)
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
        self.send(await self.server.answer(body))
        await self.writable()  # a peer that does not read its replies gets no more of them queued

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
