"""Length-prefixed CBOR frames between the gateway and the enclave server.

A frame is a 4-byte big-endian length followed by that many bytes of CBOR (one map). The
reader enforces a maximum size before reading the body and a deadline for a frame that has
started but does not finish (a stalled or truncated peer).
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import cbor2

from enclave_app.errors import RequestError

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 8 * 1024 * 1024


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
    try:
        message = cbor2.loads(body)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as err:
        raise RequestError("BAD_FRAME", f"frame is not valid CBOR: {err}") from err
    if not isinstance(message, dict):
        raise RequestError("BAD_FRAME", f"expected a CBOR map, found {type(message).__name__}")
    return message
