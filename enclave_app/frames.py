"""Length-prefixed CBOR frames between the gateway and the enclave server.

A frame is a 4-byte big-endian length followed by that many bytes of CBOR (one map). The
reader enforces a maximum size before reading the body and a deadline for a frame that has
started but does not finish (a stalled or truncated peer).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import struct
from typing import Any, cast

import cbor2
from trustdial_verifier.unstable.decoding import strict_cbor

from enclave_app.errors import RequestError
from enclave_app.read_buffer import PreallocatedReads
from enclave_app.write_flow import WriteFlow

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 8 * 1024 * 1024
#: Data items in one frame: requests carry tensors as byte strings and chat messages as short lists.
MAX_FRAME_ITEMS = 1 << 16


class FrameError(RequestError):
    """The byte stream itself is unusable; the connection is closed after reporting it."""


async def read_frame(reader: asyncio.StreamReader, *, max_size: int, stall_timeout: float) -> bytes | None:
    """The next frame's body, or None on a clean end of stream between frames."""
    try:
        first = await reader.read(1)
    except ConnectionError:
        return None
    if not first:
        return None
    try:
        rest = await asyncio.wait_for(reader.readexactly(HEADER.size - 1), stall_timeout)
        (length,) = HEADER.unpack(first + rest)
        if length > max_size:
            raise FrameError("FRAME_TOO_LARGE", f"frame of {length} bytes exceeds the limit of {max_size}", 413)
        return await asyncio.wait_for(reader.readexactly(length), stall_timeout)
    except asyncio.IncompleteReadError as err:
        raise FrameError("FRAME_TRUNCATED", f"stream ended {len(err.partial)} bytes into a frame part") from err
    except TimeoutError as err:
        raise FrameError("FRAME_TIMEOUT", f"peer stalled for {stall_timeout} s inside a frame", 408) from err


def encode_frame(message: dict[str, Any]) -> bytes:
    body = cbor2.dumps(message)
    return HEADER.pack(len(body)) + body


def decode_message(body: bytes) -> dict[str, Any]:
    """A frame's body as a map, through the verifier's strict CBOR reader: no tags (so no shared references
    28/29, no bignums), bounded depth and item count, unique keys, finite floats. Anything else is ``BAD_FRAME``
    with the reader's code in the message; the connection keeps serving."""
    try:
        message = strict_cbor.decode(body, max_bytes=len(body), max_items=MAX_FRAME_ITEMS, floats=True)
    except strict_cbor.CborError as err:
        raise RequestError("BAD_FRAME", f"frame is not CBOR the enclave accepts: {err.reason} ({err.code})") from None
    if not isinstance(message, dict):
        raise RequestError("BAD_FRAME", f"expected a CBOR map, found {type(message).__name__}")
    return cast(dict[str, Any], message)


class FrameProtocol(WriteFlow, PreallocatedReads):
    """Frames over a stream as an asyncio protocol: parsed from whatever bytes arrive (size checked
    from the header, before the body is read), with a deadline for a started frame that stops
    (``stall_timeout`` after its last byte), and written coalesced: the frames sent during one
    pass of the event loop go out in one ``write`` (one system call, one wake-up of the peer).

    Subclasses implement :meth:`frame_received` and :meth:`stream_failed` (the stream is unusable:
    oversized, truncated or stalled frame; nothing more is read from it, and the subclass closes
    the connection once it has sent what it owes)."""

    def __init__(self, *, max_frame: int, stall_timeout: float) -> None:
        self.max_frame = max_frame
        self.stall_timeout = stall_timeout
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._out: list[bytes] = []
        self._stall: asyncio.TimerHandle | None = None
        self._last_byte = 0.0
        self._failed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._stall is not None:
            self._stall.cancel()
        self.release_writers()
        self.transport = None

    @abc.abstractmethod
    def frame_received(self, body: bytes) -> None:
        """One whole frame's body arrived (not yet decoded)."""

    @abc.abstractmethod
    def stream_failed(self, err: FrameError) -> None:
        """The stream is unusable (oversized, truncated or stalled frame)."""

    def data_received(self, data: bytes | memoryview) -> None:
        if self._failed:
            return
        buffer = self._buffer
        buffer += data
        while len(buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(buffer)
            if length > self.max_frame:
                message = f"frame of {length} bytes exceeds the limit of {self.max_frame}"
                self._fail(FrameError("FRAME_TOO_LARGE", message, 413))
                return
            end = HEADER.size + length
            if len(buffer) < end:
                break
            body = bytes(buffer[HEADER.size : end])
            del buffer[:end]
            self.frame_received(body)
            if self._failed or self.transport is None:
                return
        if buffer:
            self._last_byte = asyncio.get_running_loop().time()
            if self._stall is None:
                self._stall = asyncio.get_running_loop().call_later(self.stall_timeout, self._check_stall)

    def _check_stall(self) -> None:
        self._stall = None
        if not self._buffer or self._failed or self.transport is None:
            return
        idle = asyncio.get_running_loop().time() - self._last_byte
        if idle < self.stall_timeout:
            self._stall = asyncio.get_running_loop().call_later(self.stall_timeout - idle, self._check_stall)
            return
        self._fail(FrameError("FRAME_TIMEOUT", f"peer stalled for {self.stall_timeout} s inside a frame", 408))

    def eof_received(self) -> bool | None:
        if self._buffer and not self._failed:
            self._fail(FrameError("FRAME_TRUNCATED", f"stream ended {len(self._buffer)} bytes into a frame"))
            return True  # the error frame still goes out
        return self.keep_open_after_eof()

    def keep_open_after_eof(self) -> bool | None:
        """At a clean end of the peer's stream: True keeps the write side open (answers still due)."""
        return None

    def _fail(self, err: FrameError) -> None:
        self._failed = True
        self._buffer.clear()
        if self.transport is not None:
            with contextlib.suppress(RuntimeError):
                self.transport.pause_reading()
        self.stream_failed(err)

    def send(self, message: dict[str, Any]) -> None:
        self.send_frame(encode_frame(message))

    def send_frame(self, frame: bytes) -> None:
        if self.transport is None:
            return
        if not self._out:
            asyncio.get_running_loop().call_soon(self.flush)
        self._out.append(frame)

    def flush(self) -> None:
        out, self._out = self._out, []
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
