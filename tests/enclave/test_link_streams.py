"""``EnclaveLink.stream`` on the one multiplexed gateway-enclave connection, against a loopback frame
server written here with asyncio streams, struct and cbor2 (not the code under test): a stream
that is waiting for its next frame holds up no other request on the connection, its frames come
in order, an error frame raises with the enclave's code and param, and the connection ending
mid-stream ends the stream with ENCLAVE_UNAVAILABLE."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import cbor2
import pytest

from enclave_app.addresses import Address
from enclave_app.enclave_link import EnclaveLink
from enclave_app.errors import RequestError


def _frame(message: dict[str, Any]) -> bytes:
    body = cbor2.dumps(message)
    return struct.pack(">I", len(body)) + body


async def _read(reader: asyncio.StreamReader) -> dict[str, Any]:
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    message = cbor2.loads(await reader.readexactly(length))
    assert isinstance(message, dict)
    return message


class Enclave:
    """Answers ``models`` at once; a ``complete`` gets its start frame, then waits for ``release``, then
    (by the request's ``then``) its chunk and end frames, an error frame, or the connection closed."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> Address:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = self.server.sockets[0].getsockname()[:2]
        return Address("tcp", host, port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks = set()
        try:
            while True:
                message = await _read(reader)
                task = asyncio.create_task(self._answer(message, writer))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def _answer(self, message: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        ident = message["id"]
        if message["op"] == "models":
            writer.write(_frame({"id": ident, "ok": True, "models": ["m"]}))
            return
        writer.write(_frame({"id": ident, "ok": True, "event": "start", "n": 0}))
        await self.release.wait()
        then = message["then"]
        if then == "close":
            writer.close()
        elif then == "error":
            error = {"code": "invalid_value", "message": "bad", "status": 400, "param": "temperature"}
            writer.write(_frame({"id": ident, "ok": False, "error": error}))
        else:
            writer.write(_frame({"id": ident, "ok": True, "event": "chunk", "n": 1}))
            writer.write(_frame({"id": ident, "ok": True, "event": "end", "n": 2}))


async def _with_link(check: Any) -> None:
    enclave = Enclave()
    link = EnclaveLink(await enclave.start(), timeout=5.0)
    try:
        await check(enclave, link)
    finally:
        await link.close()
        assert enclave.server is not None
        enclave.server.close()


def test_a_waiting_stream_holds_up_no_other_request_on_the_connection() -> None:
    async def check(enclave: Enclave, link: EnclaveLink) -> None:
        frames = link.stream({"op": "complete", "then": "end"})
        assert (await frames.__anext__())["event"] == "start"
        for _ in range(3):  # the stream is waiting for the enclave; calls on the same connection are answered
            assert (await asyncio.wait_for(link.call({"op": "models"}), 5))["models"] == ["m"]
        connection = link.connection
        enclave.release.set()
        assert [(f["event"], f["n"]) async for f in frames] == [("chunk", 1), ("end", 2)]
        assert link.connection is connection  # one connection carried it all
        assert connection is not None and not connection.streams  # the finished stream is let go of

    asyncio.run(_with_link(check))


def test_two_streams_interleave_on_one_connection() -> None:
    async def check(enclave: Enclave, link: EnclaveLink) -> None:
        first = link.stream({"op": "complete", "then": "end"})
        second = link.stream({"op": "complete", "then": "end"})
        assert (await first.__anext__())["event"] == (await second.__anext__())["event"] == "start"
        enclave.release.set()
        assert [f["n"] async for f in second] == [1, 2]
        assert [f["n"] async for f in first] == [1, 2]

    asyncio.run(_with_link(check))


def test_an_error_frame_raises_with_the_enclave_code_status_and_param() -> None:
    async def check(enclave: Enclave, link: EnclaveLink) -> None:
        frames = link.stream({"op": "complete", "then": "error"})
        await frames.__anext__()
        enclave.release.set()
        with pytest.raises(RequestError) as caught:
            await frames.__anext__()
        assert (caught.value.code, caught.value.status, caught.value.param) == ("invalid_value", 400, "temperature")
        assert (await link.call({"op": "models"}))["ok"]  # the connection serves on

    asyncio.run(_with_link(check))


def test_the_connection_ending_mid_stream_ends_the_stream_with_enclave_unavailable() -> None:
    async def check(enclave: Enclave, link: EnclaveLink) -> None:
        frames = link.stream({"op": "complete", "then": "close"})
        await frames.__anext__()
        enclave.release.set()
        with pytest.raises(RequestError) as caught:
            await asyncio.wait_for(frames.__anext__(), 5)
        assert (caught.value.code, caught.value.status) == ("ENCLAVE_UNAVAILABLE", 503)
        assert (await link.call({"op": "models"}))["models"] == ["m"]  # a new connection is made

    asyncio.run(_with_link(check))
