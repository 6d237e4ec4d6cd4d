"""How much slower the onnxruntime run itself gets while the sealer process works.

``handoff.py`` prices the inference thread's hand-off as a whole; this bench times
only the ``run_with_iobinding`` call, run by run, on the 1M-parameter MLP at batch 1 (1 intra-op
thread): the plain loop on one fixed binding against the bound loop (next slot's binding, ready
word stored, the sealer process sealing every response), in interleaved rounds. It reports the
median, the mean and the mean without the slowest 1 % of runs for each loop, and splits the
bound loop's runs by what the sealer did meanwhile: nothing, read slots, or finished a seal.
A run that lasts longer is more likely to overlap sealer activity, so the split shows where
slow runs fall, not what caused them; the plain loop's own tail is the reference.

    .venv/bin/python -m bench.tee_microloop.interference [--rounds 10] [--runs 3000] [--pin] [--record]

``--pin`` puts the inference thread on CPU 0 and the sealer process (and the pipeline's reader
thread) on CPU 1. The last line is a JSON object.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.json_line import emit
from bench.tee_microloop.mlp_ring import ATTESTATION, bound_to_every_slot, fixed_binding, mlp_session
from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.process_pipeline import ProcessReceiptPipeline
from enclave_app.receipts.ring import READ, WRITTEN

RESULTS = Path(__file__).resolve().parent / "results" / "interference.json"


def summary(values_s: list[float]) -> dict[str, float]:
    ordered = sorted(values_s)
    kept = ordered[: max(1, int(len(ordered) * 0.99))]
    return {
        "median_us": round(statistics.median(ordered) * 1e6, 2),
        "mean_us": round(statistics.fmean(ordered) * 1e6, 2),
        "mean_without_slowest_1pct_us": round(statistics.fmean(kept) * 1e6, 2),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1] * 1e6, 2),
        "share": 0.0,
        "runs": len(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3000, help="runs per loop and round")
    parser.add_argument("--pin", action="store_true", help="inference on CPU 0, the sealer on CPU 1")
    parser.add_argument("--record", action="store_true", help=f"also write the JSON line to {RESULTS.name}")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_start = round(os.getloadavg()[0], 2)
    session, x = mlp_session()
    fixed = fixed_binding(session, x)
    run = session.run_with_iobinding
    clock = time.perf_counter
    pipeline = ProcessReceiptPipeline(ReceiptKey.generate(), ATTESTATION)
    try:
        bound = bound_to_every_slot(pipeline, session, x)
        if args.pin:
            os.sched_setaffinity(0, {0})
            os.sched_setaffinity(pipeline.child_pid or 0, {1})
            for thread in threading.enumerate():
                if thread.native_id is not None and thread.native_id != threading.get_native_id():
                    os.sched_setaffinity(thread.native_id, {1})
        words, control, offsets, cpu = pipeline._words, pipeline._control, pipeline._offsets, pipeline._cpu
        slots = pipeline.slots

        def plain_loop(count: int, out: list[float]) -> None:
            for _ in range(count):
                start = clock()
                run(fixed)
                out.append(clock() - start)

        def bound_loop(count: int, out: list[tuple[float, int, bool]]) -> None:
            written = control[WRITTEN]
            for _ in range(count):
                index = written % slots
                read_before, sealed_before = control[READ], cpu[0]
                start = clock()
                run(bound._slot[index][1])
                elapsed = clock() - start
                out.append((elapsed, control[READ] - read_before, cpu[0] != sealed_before))
                written += 1
                while written - control[READ] > slots:
                    pass  # the ring is full: wait for the sealer
                pipeline._written = control[WRITTEN] = written
                words[offsets[index] >> 3] = written
            pipeline.drain()

        plain_loop(args.runs // 2, [])
        bound_loop(args.runs // 2, [])
        plain: list[float] = []
        runs: list[tuple[float, int, bool]] = []
        for round_index in range(args.rounds):
            plain_loop(args.runs, plain)
            bound_loop(args.runs, runs)
            print(f"[interference] round {round_index + 1}/{args.rounds}", file=sys.stderr, flush=True)
    finally:
        pipeline.close()
    groups = {
        "sealer idle": [t for t, read, sealed in runs if not read and not sealed],
        "sealer read slots": [t for t, read, sealed in runs if read and not sealed],
        "sealer finished a seal": [t for t, _, sealed in runs if sealed],
    }
    result: dict[str, Any] = {"plain": summary(plain), "bound": summary([t for t, _, _ in runs]), "bound_by_sealer": {}}
    result["plain"]["share"] = result["bound"]["share"] = 1.0
    for name, values in groups.items():
        if values:
            result["bound_by_sealer"][name] = summary(values)
            result["bound_by_sealer"][name]["share"] = round(len(values) / len(runs), 4)
    result["ratio_of_means"] = round(result["plain"]["mean_us"] / result["bound"]["mean_us"], 4)
    result["ratio_of_medians"] = round(result["plain"]["median_us"] / result["bound"]["median_us"], 4)
    result.update(
        pinned=args.pin, rounds=args.rounds, runs=args.runs, started_utc=started, load_avg_1m_start=load_start,
        load_avg_1m_end=round(os.getloadavg()[0], 2), cores=os.cpu_count(),
    )  # fmt: skip
    rows = [("plain", result["plain"]), ("bound", result["bound"]), *result["bound_by_sealer"].items()]
    for name, row in rows:
        print(
            f"{name:>23}: median {row['median_us']:7.2f}  mean {row['mean_us']:7.2f}  "
            f"mean w/o slowest 1% {row['mean_without_slowest_1pct_us']:7.2f}  p99 {row['p99_us']:8.2f} µs  "
            f"share {row['share']:.3f}"
        )
    emit(result, RESULTS, args.record)


if __name__ == "__main__":
    main()
