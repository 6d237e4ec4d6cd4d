"""``enclave_app.service.loop_future``: how a receipt sealed on the server's event loop (the default
sealer) reaches the request that waits for it. On the loop's own thread the waiter is resolved in
place, with no self-pipe write and no extra pass of the loop (``asyncio.wrap_future`` needs both);
from another thread (the sealing thread) it goes through ``call_soon_threadsafe``; errors carry over;
a caller that gives up leaves the pipeline's future alone."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

import pytest

from enclave_app.service import loop_future


def test_a_receipt_sealed_on_the_loop_thread_resolves_the_waiter_at_once() -> None:
    async def run() -> tuple[bool, bool, bytes]:
        loop = asyncio.get_running_loop()
        wrapped_source: Future[bytes] = Future()
        wrapped = asyncio.wrap_future(wrapped_source, loop=loop)
        source: Future[bytes] = Future()
        waiter = loop_future(source, loop)
        wrapped_source.set_result(b"receipt")
        source.set_result(b"receipt")
        # asyncio's own wrapper is still waiting for a pass of the loop (and wrote to its self-pipe)
        return wrapped.done(), waiter.done(), await waiter

    wrapped_done, done, value = asyncio.run(run())
    assert not wrapped_done  # the reference behaviour this helper avoids
    assert done and value == b"receipt"


def test_a_receipt_sealed_on_another_thread_reaches_the_loop() -> None:
    async def run() -> bytes:
        loop = asyncio.get_running_loop()
        source: Future[bytes] = Future()
        waiter = loop_future(source, loop)
        sealer = threading.Thread(target=source.set_result, args=(b"from the sealing thread",))
        sealer.start()
        value = await asyncio.wait_for(waiter, 10)
        sealer.join()
        return value

    assert asyncio.run(run()) == b"from the sealing thread"


def test_an_error_reaches_the_waiter_and_a_cancelled_waiter_leaves_the_source_alone() -> None:
    class Refused(Exception):
        pass

    async def run() -> Future[bytes]:
        loop = asyncio.get_running_loop()
        failing: Future[bytes] = Future()
        waiter = loop_future(failing, loop)
        failing.set_exception(Refused("unencodable tensor"))
        with pytest.raises(Refused):
            await waiter
        kept: Future[bytes] = Future()
        abandoned = loop_future(kept, loop)
        abandoned.cancel()
        kept.set_result(b"sealed anyway")  # the pipeline resolves it later; nothing raises
        await asyncio.sleep(0)
        return kept

    kept = asyncio.run(run())
    assert not kept.cancelled() and kept.result() == b"sealed anyway"
