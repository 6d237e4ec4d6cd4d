"""Operator-facing output: progress lines on stderr, and keeping ezkl's own prints off stdout."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator


def progress(stage: str, message: str) -> None:
    sys.stderr.write(f"[{stage}] {message}\n")
    sys.stderr.flush()


@contextlib.contextmanager
def ezkl_prints_to_stderr() -> Iterator[None]:
    """ezkl (Rust) writes tables straight to file descriptor 1; send them to 2 so stdout stays parseable."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def ticking(stage: str, message: str, every_s: float = 5.0) -> Iterator[None]:
    """Print ``message`` now, then an elapsed-time line every ``every_s`` until the block ends."""
    started = time.monotonic()
    done = threading.Event()
    progress(stage, message)

    def tick() -> None:
        while not done.wait(every_s):
            progress(stage, f"... still running, {time.monotonic() - started:.0f}s elapsed")

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        progress(stage, f"done in {time.monotonic() - started:.2f}s")
