"""What the inference thread pays to hand a response to the sealer process, step by step.

With the receipt work in a sealer process (``trustdial serve``'s default), the inference thread
only hands each response over; this bench takes that hand-off apart on the 1M-parameter MLP at
batch 1 (1 intra-op thread), the sealer process running and sealing every response:

* ``plain``: ``run_with_iobinding`` on one fixed binding (the fastest plain loop; the baseline);
* ``bare``: run on the next slot's binding and store its ready word (no input copy, no nonce:
  the receipts of this loop commit whatever input the slot already holds);
* ``copy``: ``bare`` plus copying the input into the slot;
* ``copy+nonce``: ``copy`` plus writing the nonce, i.e. every byte the receipt needs;
* ``bound``: ``BoundModel.run`` as the server calls it (input checks, lock, bookkeeping).

Interleaved rounds in one process; medians. Every loop's receipts are sealed inside its timing
(drain). The last line is a JSON object with µs per run and the ratio of each loop to ``plain``.

    .venv/bin/python -m bench.tee_microloop.handoff [--rounds 15] [--runs 3000] [--record]
        [--poll S] [--max-wait S] [--slots N] [--max-batch N]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.json_line import emit
from bench.tee_microloop.mlp_ring import ATTESTATION, bound_to_every_slot, fixed_binding, mlp_session
from enclave_app.receipts.bound_model import BoundModel
from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.process_pipeline import ProcessReceiptPipeline
from enclave_app.receipts.ring import NONCE, NONCE_AT, READ, WRITTEN

RESULTS = Path(__file__).resolve().parent / "results" / "handoff.json"


def _slot_loop(bound: BoundModel, pipeline: ProcessReceiptPipeline, x: np.ndarray, nonce: bytes, *, copy: bool,
               write_nonce: bool) -> Callable[[int], None]:  # fmt: skip
    """The hand-off without ``BoundModel.run``'s checks and lock (one thread only): reaches into
    the ring the way ``reserve`` / ``publish`` do, to price each step."""
    slots = pipeline.slots
    run = bound.session.run_with_iobinding
    per_slot = bound._slot  # private parts: a bench dissecting the hand-off
    words = pipeline._words
    control = pipeline._control
    offsets = pipeline._offsets
    buf = pipeline.buf
    pack = NONCE.pack_into

    def loop(count: int) -> None:
        written = control[WRITTEN]
        for _ in range(count):
            index = written % slots
            in_views, binding, _ = per_slot[index]
            if copy:
                in_views[0][...] = x
            run(binding)
            offset = offsets[index]
            if write_nonce:
                pack(buf, offset + NONCE_AT, len(nonce), nonce)
            written += 1
            while written - control[READ] > slots:
                pass  # the ring is full: wait for the sealer
            pipeline._written = control[WRITTEN] = written
            words[offset >> 3] = written
        pipeline.drain()

    return loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=3000, help="runs per loop and round")
    parser.add_argument("--poll", type=float, default=0.0005, help="the sealer's sleep when the ring is empty (s)")
    parser.add_argument("--max-wait", type=float, default=0.002, help="latency budget of a micro-batch (s)")
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--record", action="store_true", help=f"also write the JSON line to {RESULTS.name}")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_start = round(os.getloadavg()[0], 2)
    session, x = mlp_session()
    nonce = os.urandom(32)
    fixed = fixed_binding(session, x)
    pipeline = ProcessReceiptPipeline(
        ReceiptKey.generate(), ATTESTATION, poll=args.poll, max_wait=args.max_wait, slots=args.slots,
        max_batch=args.max_batch,
    )  # fmt: skip
    try:
        bound = bound_to_every_slot(pipeline, session, x)
        run_bound = functools.partial(bound.run, {"x": x}, nonce, want_future=False, copy=False)

        def bound_loop(count: int) -> None:
            for _ in range(count):
                run_bound()
            pipeline.drain()

        def plain_loop(count: int) -> None:
            run = session.run_with_iobinding
            for _ in range(count):
                run(fixed)

        loops: dict[str, Callable[[int], None]] = {
            "plain": plain_loop,
            "bare": _slot_loop(bound, pipeline, x, nonce, copy=False, write_nonce=False),
            "copy": _slot_loop(bound, pipeline, x, nonce, copy=True, write_nonce=False),
            "copy+nonce": _slot_loop(bound, pipeline, x, nonce, copy=True, write_nonce=True),
            "bound": bound_loop,
        }
        for loop in loops.values():  # warm up
            loop(args.runs // 2)
        times: dict[str, list[float]] = {name: [] for name in loops}
        for round_index in range(args.rounds):
            for name, loop in loops.items():
                start = time.perf_counter()
                loop(args.runs)
                times[name].append((time.perf_counter() - start) / args.runs * 1e6)
            print(f"[handoff] round {round_index + 1}/{args.rounds}", file=sys.stderr, flush=True)
        sealed = pipeline.receipts_issued
    finally:
        pipeline.close()
    medians = {name: statistics.median(values) for name, values in times.items()}
    result: dict[str, Any] = {
        "us_per_run": {name: round(value, 2) for name, value in medians.items()},
        "ratio_to_plain": {name: round(medians["plain"] / value, 4) for name, value in medians.items()},
        "added_us": {name: round(value - medians["plain"], 2) for name, value in medians.items()},
        "receipts_sealed": sealed,
        "sealer": {"poll_s": args.poll, "max_wait_s": args.max_wait, "slots": args.slots, "max_batch": args.max_batch},
        "rounds": args.rounds,
        "runs": args.runs,
        "started_utc": started,
        "load_avg_1m_start": load_start,
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
        "cores": os.cpu_count(),
    }
    for name in loops:
        print(f"{name:>11}: {medians[name]:7.2f} µs/run  ratio {result['ratio_to_plain'][name]:.3f}")
    emit(result, RESULTS, args.record)


if __name__ == "__main__":
    main()
