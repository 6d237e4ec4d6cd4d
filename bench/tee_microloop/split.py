"""Splits the bound loop's overhead into the hand-off itself and the sealer's activity.

``handoff.py`` prices the hand-off with the sealer process running; here the same
``BoundModel.run`` loop (1M-parameter MLP, batch 1, 1 intra-op thread) runs twice per round over
windows of runs that fit the ring (64 slots, as the server): once with the sealer process
stopped during each window (``SIGSTOP``, so nothing but the inference thread's own work is
timed; the window's responses are sealed after ``SIGCONT``, outside the timing) and once with
it working. Two plain loops are the baselines:

* ``call``: ``run_with_iobinding`` on one fixed binding (no per-run input handling at all);
* ``serving``: each run's input copied into a pre-bound buffer first (the least a plain server
  does with a new request's tensor; the bound loop copies it into its slot the same way).

``handoff_without_run`` times ``BoundModel.run`` with the onnxruntime call replaced by a no-op
(sealer stopped): the hand-off's cost with warm caches, to compare with ``handoff_in_loop_us``
(stopped bound loop minus the call loop), its cost right after each run has streamed the
model's 4.3 MB of weights through the caches.

Interleaved rounds in one process; medians. The last line is a JSON object.

    .venv/bin/python -m bench.tee_microloop.split [--rounds 10] [--runs 3000] [--record]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.json_line import emit
from bench.tee_microloop.mlp_ring import ATTESTATION, bound_to_every_slot, fixed_binding, mlp_session
from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.process_pipeline import ProcessReceiptPipeline

RESULTS = Path(__file__).resolve().parent / "results" / "split.json"


def per_run_us(loop: Callable[[int], None], runs: int) -> float:
    start = time.perf_counter()
    loop(runs)
    return (time.perf_counter() - start) / runs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3000, help="runs per loop and round")
    parser.add_argument("--slots", type=int, default=64, help="ring slots (the server's default: 64)")
    parser.add_argument("--record", action="store_true", help=f"also write the JSON line to {RESULTS.name}")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_start = round(os.getloadavg()[0], 2)
    session, x = mlp_session()
    run = session.run_with_iobinding
    fixed = fixed_binding(session, x)
    staged = np.empty_like(x)
    serving_binding = fixed_binding(session, staged)
    feeds, nonce = {"x": x}, os.urandom(32)

    def call_loop(count: int) -> None:
        for _ in range(count):
            run(fixed)

    def serving_loop(count: int) -> None:
        for _ in range(count):
            staged[...] = x
            run(serving_binding)

    pipeline = ProcessReceiptPipeline(ReceiptKey.generate(), ATTESTATION, slots=args.slots)
    window = max(1, args.slots - 4)
    try:
        bound = bound_to_every_slot(pipeline, session, x)
        child = pipeline.child_pid
        if child is None:
            raise SystemExit("the sealer process has no pid")

        def bound_loop(count: int) -> None:
            for _ in range(count):
                bound.run(feeds, nonce, want_future=False, copy=False)

        def windowed(count: int, stop: bool) -> float:
            """µs per run over windows of ``window`` runs (the ring's size less a margin): the
            sealer stopped during each window or not; every window's receipts sealed (drain)
            between windows, outside the timing."""
            spent, done = 0.0, 0
            while done < count:
                size = min(window, count - done)
                if stop:
                    os.kill(child, signal.SIGSTOP)
                try:
                    start = time.perf_counter()
                    bound_loop(size)
                    spent += time.perf_counter() - start
                finally:
                    if stop:
                        os.kill(child, signal.SIGCONT)
                pipeline.drain()
                done += size
            return spent / count * 1e6

        def handoff_warm(count: int) -> float:
            """µs per ``BoundModel.run`` with the onnxruntime call swapped for a no-op (the sealer
            stopped): the hand-off's own cost when nothing evicts the caches in between."""
            real = bound._run
            bound._run = lambda binding: None  # private part: the bench dissects the hand-off
            try:
                return windowed(count, True)
            finally:
                bound._run = real

        for _ in range(2):  # warm up
            call_loop(args.runs // 4)
            serving_loop(args.runs // 4)
            windowed(args.runs // 4, False)
        times: dict[str, list[float]] = {
            "call": [], "serving": [], "bound_stopped": [], "bound_working": [], "handoff_without_run": []
        }  # fmt: skip
        for index in range(args.rounds):
            times["call"].append(per_run_us(call_loop, args.runs))
            times["serving"].append(per_run_us(serving_loop, args.runs))
            times["bound_stopped"].append(windowed(args.runs, True))
            times["bound_working"].append(windowed(args.runs, False))
            times["handoff_without_run"].append(handoff_warm(args.runs))
            print(
                f"[split] round {index + 1}/{args.rounds} "
                + " ".join(f"{name} {values[-1]:.1f}" for name, values in times.items()),
                file=sys.stderr,
                flush=True,
            )
        receipts = pipeline.receipts_issued
    finally:
        pipeline.close()
    median = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "bench": "tee_microloop.split",
        "started_utc": started,
        "load_avg_1m_start": load_start,
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
        "rounds": args.rounds,
        "runs": args.runs,
        "receipts_issued": receipts,
        "us_per_run": {name: round(value, 2) for name, value in median.items()},
        "ratio_vs_call": {
            name: round(median["call"] / median[name], 4) for name in ("serving", "bound_stopped", "bound_working")
        },
        "handoff_in_loop_us": round(median["bound_stopped"] - median["call"], 2),
        "ratio_vs_serving": {
            name: round(median["serving"] / median[name], 4) for name in ("bound_stopped", "bound_working")
        },
    }
    emit(result, RESULTS, args.record)


if __name__ == "__main__":
    main()
