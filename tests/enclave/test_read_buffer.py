"""The served path's protocols receive into one preallocated buffer per thread
(``enclave_app.read_buffer``): the transport really uses it (``recv_into``, no 256 KiB allocation per
read), and what a protocol keeps from one read is not changed by the next one, whatever the split of
the stream into reads — frames and HTTP requests arrive byte for byte as sent, over a real loopback
TCP connection."""

from __future__ import annotations

import asyncio
import os
import random
import socket

from enclave_app import read_buffer
from enclave_app.frames import HEADER, FrameError, FrameProtocol
from enclave_app.http_server import HttpLimits, HttpProtocol, HttpRequest, HttpResponse


class Collector(FrameProtocol):
    def __init__(self, done: asyncio.Future[None], expected: int) -> None:
        super().__init__(max_frame=1 << 20, stall_timeout=30)
        self.bodies: list[bytes] = []
        self.done = done
        self.expected = expected

    def frame_received(self, body: bytes) -> None:
        self.bodies.append(body)
        if len(self.bodies) == self.expected and not self.done.done():
            self.done.set_result(None)

    def stream_failed(self, err: FrameError) -> None:
        if not self.done.done():
            self.done.set_exception(err)


def _chunks(data: bytes, rng: random.Random) -> list[bytes]:
    out, at = [], 0
    while at < len(data):
        step = rng.choice([1, 3, 4, 5, 700, 4096, 70_000])
        out.append(data[at : at + step])
        at += step
    return out


def test_frames_arrive_byte_for_byte_however_the_stream_is_split_into_reads() -> None:
    rng = random.Random(16)
    bodies = [os.urandom(rng.choice([0, 1, 17, 3000, 200_000, 300_000])) for _ in range(60)]
    stream = b"".join(HEADER.pack(len(body)) + body for body in bodies)
    reads: list[int] = []
    original = read_buffer.PreallocatedReads.buffer_updated

    def counting(self: read_buffer.PreallocatedReads, nbytes: int) -> None:
        reads.append(nbytes)
        original(self, nbytes)

    async def run() -> list[bytes]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        holder: list[Collector] = []

        def make() -> Collector:
            holder.append(Collector(done, len(bodies)))
            return holder[0]

        server = await loop.create_server(make, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for chunk in _chunks(stream, rng):
            writer.write(chunk)
            if rng.random() < 0.3:
                await writer.drain()
                await asyncio.sleep(0)
        await writer.drain()
        await asyncio.wait_for(done, 60)
        writer.close()
        server.close()
        return holder[0].bodies

    read_buffer.PreallocatedReads.buffer_updated = counting  # type: ignore[method-assign]
    try:
        received = asyncio.run(run())
    finally:
        read_buffer.PreallocatedReads.buffer_updated = original  # type: ignore[method-assign]
    assert len(reads) > 1 and sum(reads) == len(stream)  # the transport read into the preallocated buffer
    assert received == bodies


def test_pipelined_http_requests_keep_their_bodies_across_reads() -> None:
    rng = random.Random(8)
    bodies = [os.urandom(rng.choice([1, 500, 5000, 60_000])) for _ in range(20)]
    wire = b"".join(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body for body in bodies
    )

    async def handler(request: HttpRequest) -> HttpResponse:
        await asyncio.sleep(0)  # later reads happen before the answer
        return HttpResponse(200, request.body, "application/octet-stream")

    async def run() -> bytes:
        loop = asyncio.get_running_loop()
        limits = HttpLimits(max_body=1 << 20)
        server = await loop.create_server(lambda: HttpProtocol(handler, limits), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for chunk in _chunks(wire, rng):
            writer.write(chunk)
        await writer.drain()
        answers = b""
        for body in bodies:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            answers += await reader.readexactly(length)
            assert length == len(body)
        writer.close()
        server.close()
        return answers

    assert asyncio.run(run()) == b"".join(bodies)
