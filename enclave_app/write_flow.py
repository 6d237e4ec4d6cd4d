"""Write flow control shared by the served path's asyncio protocols (the enclave's frames, the HTTP server).

The transport calls ``pause_writing`` when its buffer passes the high-water mark (the peer is not reading) and
``resume_writing`` when it drains; a writer awaits :meth:`WriteFlow.writable` before writing more, so a slow peer
holds back its own connection and never grows the process's memory. ``connection_lost`` must call
:meth:`WriteFlow.release_writers`: a writer waiting on a closed connection is woken (its next write is a no-op)."""

from __future__ import annotations

import asyncio


class WriteFlow:
    """Mixin for an ``asyncio`` protocol (put it before the protocol base)."""

    _writable: asyncio.Future[None] | None = None

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self.release_writers()
        self._writable = None

    def release_writers(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    async def writable(self) -> None:
        """Wait while the peer is not reading what was written."""
        if self._writable is not None:
            await self._writable
