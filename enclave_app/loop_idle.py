"""An event loop for ``trustdial serve`` that says when it is about to block.

With ``--sealer loop`` the receipts are sealed on the loop's own thread, once per pass of the
loop that ran out of work: the responses of that pass share one signature and a lone request is
sealed at once (``EnclaveService.loop_idle``). With the sealer process, the sealer lingers
``poll`` seconds after the ring empties, so that responses arriving close together share a
signature. When the server's event loop is about to wait in its selector with nothing to run,
no response is about to be published (bound models run on the loop, and a run on a worker
thread has reserved its slot, which the sealer sees), so lingering only delays a lone request:
the selector below tells the receipt pipeline (``writer_idle``) before each blocking wait and
after it, and the sealer seals at once."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable
from typing import Any


class IdleSignallingSelector(selectors.DefaultSelector):
    """The default selector; ``on_block(True)`` before a wait that may block, ``on_block(False)`` after.
    When ``on_block(True)`` returns true it did work that scheduled callbacks: the wait does not block."""

    def __init__(self) -> None:
        super().__init__()
        self.on_block: Callable[[bool], bool | None] | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        on_block = self.on_block
        if on_block is None or timeout == 0:
            result: list[tuple[selectors.SelectorKey, int]] = super().select(timeout)
            return result
        if on_block(True):
            timeout = 0
        try:
            result = super().select(timeout)
        finally:
            on_block(False)
        return result


def idle_signalling_loop() -> tuple[asyncio.AbstractEventLoop, IdleSignallingSelector]:
    selector = IdleSignallingSelector()
    loop: Any = asyncio.SelectorEventLoop(selector)
    return loop, selector
