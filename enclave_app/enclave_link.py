"""The gateway's side of the frame protocol: one multiplexed connection to the enclave
server, requests matched to responses by ``id``, reconnecting after a failure."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any

from enclave_app.addresses import Address, open_connection
from enclave_app.errors import RequestError
from enclave_app.frames import DEFAULT_MAX_FRAME, FrameError, decode_message, encode_frame, read_frame

log = logging.getLogger("trustdial.gateway")


class EnclaveLink:
    def __init__(self, address: Address, *, timeout: float = 30.0, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.address = address
        self.timeout = timeout
        self.max_frame = max_frame
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._streams: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._connect_lock = asyncio.Lock()

    async def _ensure(self) -> asyncio.StreamWriter:
        async with self._connect_lock:
            if self._writer is None or self._writer.is_closing():
                try:
                    reader, writer = await asyncio.wait_for(
                        open_connection(self.address, self.max_frame + 8), self.timeout
                    )
                except (OSError, TimeoutError) as err:
                    raise RequestError(
                        "ENCLAVE_UNAVAILABLE", f"cannot reach the enclave at {self.address}: {err}", 503
                    ) from err
                self._writer = writer
                self._reader_task = asyncio.create_task(self._read_loop(reader, writer))
            return self._writer

    async def _read_loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                body = await read_frame(reader, max_size=self.max_frame, stall_timeout=self.timeout)
                if body is None:
                    break
                message = decode_message(body)
                stream = self._streams.get(message.get("id"))  # type: ignore[arg-type]
                if stream is not None:
                    stream.put_nowait(message)
                    continue
                future = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]
                if future is not None and not future.done():
                    future.set_result(message)
        except (RequestError, ConnectionError) as err:
            log.warning("enclave connection ended: %s", err)
        finally:
            writer.close()
            if self._writer is writer:
                self._writer = None
            for future in list(self._pending.values()):
                if not future.done():
                    future.set_exception(RequestError("ENCLAVE_UNAVAILABLE", "the enclave connection closed", 503))
            self._pending.clear()
            closed = {"ok": False, "error": {"code": "ENCLAVE_UNAVAILABLE", "message": "the enclave connection closed",
                                             "status": 503}}  # fmt: skip
            for queue in self._streams.values():
                queue.put_nowait(closed)

    async def call(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request; the successful reply, or :class:`RequestError` with the enclave's code."""
        writer = await self._ensure()
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        frame = encode_frame({**message, "id": request_id})
        if len(frame) - 4 > self.max_frame:
            self._pending.pop(request_id, None)
            raise FrameError("BODY_TOO_LARGE", f"request of {len(frame)} bytes exceeds the enclave frame limit", 413)
        try:
            writer.write(frame)
            await writer.drain()
            reply = await asyncio.wait_for(future, self.timeout)
        except TimeoutError as err:
            raise RequestError("ENCLAVE_TIMEOUT", f"the enclave did not answer within {self.timeout} s", 504) from err
        except ConnectionError as err:
            raise RequestError("ENCLAVE_UNAVAILABLE", f"the enclave connection failed: {err}", 503) from err
        finally:
            self._pending.pop(request_id, None)
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise RequestError(
                str(error.get("code", "ENCLAVE_ERROR")), str(error.get("message", "")), int(error.get("status", 502))
            )
        return reply

    async def stream(self, message: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Send one streaming request (op ``complete``); yield its frames until the one with ``event: end``.
        An error frame raises :class:`RequestError` with the enclave's code (and ``param``)."""
        writer = await self._ensure()
        request_id = next(self._ids)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._streams[request_id] = queue
        try:
            frame = encode_frame({**message, "id": request_id})
            if len(frame) - 4 > self.max_frame:
                raise FrameError("BODY_TOO_LARGE", f"request of {len(frame)} bytes exceeds the frame limit", 413)
            try:
                writer.write(frame)
                await writer.drain()
            except ConnectionError as err:
                raise RequestError("ENCLAVE_UNAVAILABLE", f"the enclave connection failed: {err}", 503) from err
            while True:
                try:
                    reply = await asyncio.wait_for(queue.get(), self.timeout)
                except TimeoutError as err:
                    raise RequestError("ENCLAVE_TIMEOUT", f"no frame for {self.timeout} s", 504) from err
                if not reply.get("ok"):
                    error = reply.get("error") or {}
                    raise RequestError(
                        str(error.get("code", "ENCLAVE_ERROR")), str(error.get("message", "")),
                        int(error.get("status", 502)), param=error.get("param"),
                    )  # fmt: skip
                yield reply
                if reply.get("event") == "end":
                    return
        finally:
            self._streams.pop(request_id, None)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
