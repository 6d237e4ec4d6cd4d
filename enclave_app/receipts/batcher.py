"""Asyncio micro-batching around :class:`Sealer`: a batch is sealed when it holds
``max_size`` statements or when its oldest statement has waited ``max_wait`` seconds."""

from __future__ import annotations

import asyncio

from verifier.receipts.model import Receipt

from enclave_app.receipts.sealer import Sealer


class Batcher:
    def __init__(self, sealer: Sealer, *, max_size: int = 64, max_wait: float = 0.002) -> None:
        if max_size < 1 or max_wait < 0:
            raise ValueError("batch size must be >= 1 and wait >= 0")
        self.sealer = sealer
        self.max_size = max_size
        self.max_wait = max_wait
        self._waiters: list[asyncio.Future[Receipt]] = []
        self._timer: asyncio.TimerHandle | None = None
        self.batches_sealed = 0

    def submit(self, statement: bytes) -> asyncio.Future[Receipt]:
        """Queue an encoded statement (call from the event loop thread, in sequence order)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Receipt] = loop.create_future()
        self.sealer.add(statement)
        self._waiters.append(future)
        if len(self._waiters) >= self.max_size:
            self.flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait, self.flush)
        return future

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiters, self._waiters = self._waiters, []
        if not waiters:
            return
        receipts = self.sealer.seal()
        self.batches_sealed += 1
        for future, receipt in zip(waiters, receipts, strict=True):
            if not future.done():
                future.set_result(receipt)
