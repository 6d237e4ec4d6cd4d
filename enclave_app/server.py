"""The enclave server: frames in, operations out, over TCP (development) or AF_VSOCK.

Each connection may pipeline requests; each request carries an ``id`` echoed in its
response, and up to ``max_in_flight`` requests per connection run concurrently. A bad
request gets an error response and the connection continues; a broken stream (oversized,
truncated or stalled frame) gets an error response and the connection is closed. Either
way every other connection keeps being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from enclave_app.addresses import Address, listening_socket
from enclave_app.errors import RequestError
from enclave_app.frames import DEFAULT_MAX_FRAME, FrameError, decode_message, encode_frame, read_frame
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
        raise RequestError("model_not_found", "this enclave serves no language-model bundles", 404)
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
        self._server = await asyncio.start_server(self._connection, sock=sock, limit=self.limits.max_frame + 8)
        if address.scheme == "tcp":
            host, port = sock.getsockname()[:2]
            return Address("tcp", host, port)
        return address

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _respond(self, writer: asyncio.StreamWriter, lock: asyncio.Lock, reply: dict[str, Any]) -> None:
        async with lock:
            writer.write(encode_frame(reply))
            await writer.drain()

    async def _handle(
        self, body: bytes, writer: asyncio.StreamWriter, lock: asyncio.Lock, slots: asyncio.Semaphore
    ) -> None:
        request_id: Any = None
        reply: dict[str, Any] | None
        try:
            message = decode_message(body)
            request_id = message.get("id")
            if message.get("op") in STREAM_OPS:
                frame_id = request_id

                async def send(frame: dict[str, Any]) -> None:
                    await self._respond(writer, lock, {"id": frame_id, "ok": True, **frame})

                await stream_dispatch(self.service, message, send)
                reply = None
            else:
                reply = {"id": request_id, "ok": True, **(await dispatch(self.service, message))}
        except RequestError as err:
            reply = error_message(request_id, err.code, err.message, err.status, err.param)
        except SealerProcessError as err:  # no receipt can be made: the response is withheld
            log.error("request %r: %s", request_id, err)
            reply = error_message(request_id, err.code, f"no receipt: {err.reason}", 503)
        except ConnectionError:  # a stream's peer went away mid-way
            log.info("request %r: peer went away during its stream", request_id)
            reply = None
        except Exception:  # a bug in one request must not take the connection down silently
            log.exception("request %r failed", request_id)
            reply = error_message(request_id, "INTERNAL", "the enclave failed to process the request", 500)
        finally:
            slots.release()
        if reply is None:
            return  # a stream: its frames are out
        try:
            await self._respond(writer, lock, reply)
        except ConnectionError:
            log.info("peer went away before its response")

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lock = asyncio.Lock()
        slots = asyncio.Semaphore(self.limits.max_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                try:
                    body = await read_frame(
                        reader, max_size=self.limits.max_frame, stall_timeout=self.limits.stall_timeout
                    )
                except FrameError as err:
                    await self._respond(writer, lock, error_message(None, err.code, err.message, err.status))
                    break
                if body is None:
                    break
                await slots.acquire()
                task = asyncio.create_task(self._handle(body, writer, lock, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        except ConnectionError:
            log.info("connection dropped")
        except asyncio.CancelledError:
            log.info("connection closed at shutdown")  # returning normally keeps asyncio from logging it
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
