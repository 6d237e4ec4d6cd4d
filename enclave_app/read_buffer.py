"""Reads into one preallocated buffer per thread, for the asyncio protocols of the served path.

A plain ``asyncio.Protocol`` gets each read as a new ``bytes`` object: the selector transport calls
``recv(256 KiB)``, which allocates 256 KiB per read and shrinks it to what arrived; measured with
``strace`` on the gateway, glibc served every such read with an ``mmap`` + ``mremap`` + ``munmap``
(two reads per request: the client's request and the enclave's reply) and fresh zeroed pages.
:class:`PreallocatedReads` is an ``asyncio.BufferedProtocol``: the transport receives into a buffer
allocated once per thread and the protocol's ``data_received`` gets a view of the bytes that arrived,
valid until it returns (the protocols here copy them into their own buffers at once). One event loop
runs per thread and asyncio reads one socket at a time, so one buffer per thread is never shared by
two reads in flight."""

from __future__ import annotations

import abc
import asyncio
import threading

#: what asyncio's selector transport asks ``recv`` for (``max_size``)
READ_SIZE = 256 * 1024

_scratch = threading.local()


def _view() -> memoryview:
    view: memoryview | None = getattr(_scratch, "view", None)
    if view is None:
        view = _scratch.view = memoryview(bytearray(READ_SIZE))
    return view


class PreallocatedReads(asyncio.BufferedProtocol, metaclass=abc.ABCMeta):
    """Subclasses implement ``data_received(data)``; ``data`` is a view valid only during the call."""

    def get_buffer(self, sizehint: int) -> memoryview:
        return _view()

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(_view()[:nbytes])

    @abc.abstractmethod
    def data_received(self, data: bytes | memoryview) -> None:
        """Bytes that arrived (copy what must outlive the call)."""
