"""Where the receipt time goes: per-response cost of each step of the receipt work on the 1M MLP
(batch 1), measured per iteration with ``perf_counter_ns`` and reported as medians and trimmed
means (robust to a loaded machine), three ways: back to back without inference (warm caches);
one response at a time, each right after its onnxruntime run (the run streams ~4.3 MB of
weights through the caches in between); and a batch at a time after the batch's runs (what the
inline pipeline does). Steps are the ones ``enclave_app.receipts.pipeline`` performs, called
through the same functions. Also: the inference thread's view of the pipeline (``session.run``
and ``submit`` wall time, threaded and inline). The last line is one JSON object (µs per
response; ``seal_*`` amortized over the batch of 64).

    .venv/bin/python -m bench.tee_microloop.receipt_steps [--runs N] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from trustdial_verifier.unstable.receipts import BatchRoot

from enclave_app.receipts.fast_encoding import ArrayCommitter, StatementEncoder, encode_batch_receipts
from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.pipeline import ReceiptPipeline
from enclave_app.receipts.sealer import tree_levels
from enclave_app.reference_models import build_mlp

MODEL_SHA = b"\x11" * 32
ATTESTATION = b"\x22" * 32
BATCH = 64
RESULTS = Path(__file__).resolve().parent / "results" / "receipt_steps.json"


def progress(message: str) -> None:
    print(f"[receipt_steps] {message}", file=sys.stderr, flush=True)


def steps(
    runs: int, batch: int, run: Callable[[], list[np.ndarray]] | None, x: np.ndarray, *, batched: bool = False
) -> dict[str, tuple[float, float]]:
    """(median, trimmed mean) µs per step over ``runs`` responses. ``run`` (the inference) is
    interleaved when given: before each response's receipt work, or with ``batched`` ``batch``
    runs first and then the whole batch's receipt work in one go (as the inline pipeline does)."""
    clock = time.perf_counter_ns
    key = ReceiptKey.generate("p256")
    committer, encoder = ArrayCommitter(), StatementEncoder(ATTESTATION)
    nonce = os.urandom(32)
    zeros = [np.zeros((1, 10), np.float32)]
    names = ("commit_input", "commit_output", "statement", "leaf_hash")
    samples: dict[str, list[int]] = {name: [] for name in ("run", *names)}
    seal_samples: dict[str, list[int]] = {"seal_tree": [], "seal_sign": [], "seal_receipts": []}
    seq = 0
    for _ in range(runs // batch):
        outputs = []
        for index in range(batch):
            if run is not None and (batched or index == 0):
                t0 = clock()
                outputs.append(run())
                samples["run"].append(clock() - t0)
            else:
                outputs.append(zeros)
        statements: list[bytes] = []
        leaves: list[bytes] = []
        for index, y in enumerate(outputs):
            if run is not None and not batched and index > 0:
                t0 = clock()
                y = run()
                samples["run"].append(clock() - t0)
            seq += 1
            t1 = clock()
            digest_in = committer.commit({"x": x})
            t2 = clock()
            digest_out = committer.commit({"y": y[0]})
            t3 = clock()
            statement = encoder.encode("infer", MODEL_SHA, digest_in, digest_out, nonce, int(time.time() * 1000), seq)
            t4 = clock()
            leaves.append(sha256(b"\x00" + statement).digest())
            t5 = clock()
            statements.append(statement)
            for name, start, end in zip(names, (t1, t2, t3, t4), (t2, t3, t4, t5), strict=True):
                samples[name].append(end - start)
        s0 = clock()
        levels = tree_levels(leaves)
        s1 = clock()
        seal = key.seal(BatchRoot(root=levels[-1][0], size=batch, attestation=ATTESTATION).encode())
        s2 = clock()
        encode_batch_receipts(statements, seal, levels)
        s3 = clock()
        for name, start, end in zip(seal_samples, (s0, s1, s2), (s1, s2, s3), strict=True):
            seal_samples[name].append((end - start) // batch)
    everything = {**samples, **seal_samples}
    if run is None:
        del everything["run"]
    return {
        name: (statistics.median(values) / 1000, trimmed_mean(values) / 1000) for name, values in everything.items()
    }


def trimmed_mean(values: list[int]) -> float:
    """Mean without the slowest 1 % (preemptions by other processes on a shared machine)."""
    ordered = sorted(values)
    return statistics.fmean(ordered[: max(1, len(ordered) * 99 // 100)])


def inference_thread(
    runs: int, session: ort.InferenceSession, x: np.ndarray, threaded: bool
) -> tuple[dict[str, tuple[float, float]], float]:
    """(median, trimmed mean) wall µs of ``session.run`` and of ``submit`` in the inference
    thread, and the 90th percentile of run + submit."""
    clock = time.perf_counter_ns
    pipeline = ReceiptPipeline(ReceiptKey.generate("p256"), ATTESTATION, max_batch=BATCH, threaded=threaded)
    nonce = os.urandom(32)
    run_ns, submit_ns = [], []
    for _ in range(runs):
        t0 = clock()
        values = session.run(None, {"x": x})
        t1 = clock()
        pipeline.submit("infer", MODEL_SHA, {"x": x}, {"y": values[0]}, nonce, want_future=False)
        t2 = clock()
        run_ns.append(t1 - t0)
        submit_ns.append(t2 - t1)
    pipeline.drain()
    pipeline.close()
    result = {
        name: (statistics.median(values) / 1000, trimmed_mean(values) / 1000)
        for name, values in (("run", run_ns), ("submit", submit_ns))
    }
    return result, p90([r + s for r, s in zip(run_ns, submit_ns, strict=True)])


def p90(values: list[int]) -> float:
    return sorted(values)[len(values) * 9 // 10] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=6400)
    parser.add_argument("--record", action="store_true", help=f"also write the JSON to {RESULTS.name}")
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(build_mlp(), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)
    load_start = round(os.getloadavg()[0], 2)
    progress(f"load average {load_start}; warm-up")
    steps(args.runs // 4, BATCH, lambda: session.run(None, {"x": x}), x)
    plain_ns = []
    for _ in range(args.runs):
        t0 = time.perf_counter_ns()
        session.run(None, {"x": x})
        plain_ns.append(time.perf_counter_ns() - t0)
    progress("receipt steps back to back")
    alone = steps(args.runs, BATCH, None, x)
    progress("receipt steps interleaved with inference")
    interleaved = steps(args.runs, BATCH, lambda: session.run(None, {"x": x}), x)
    progress("receipt steps, a batch at a time after its inferences")
    batched = steps(args.runs, BATCH, lambda: session.run(None, {"x": x}), x, batched=True)
    progress("inference thread, threaded and inline pipeline")
    threaded, threaded_p90 = inference_thread(args.runs, session, x, True)
    inline, inline_p90 = inference_thread(args.runs, session, x, False)

    def table(values: dict[str, tuple[float, float]]) -> dict[str, dict[str, float]]:
        return {k: {"median": round(m, 3), "mean": round(t, 3)} for k, (m, t) in values.items()}

    result: dict[str, Any] = {
        "plain_run_us": {
            "median": round(statistics.median(plain_ns) / 1000, 2),
            "mean": round(trimmed_mean(plain_ns) / 1000, 2),
            "p90": round(p90(plain_ns), 2),
        },
        "alone_us": table(alone),
        "alone_total_us": {
            "median": round(sum(m for m, _ in alone.values()), 2),
            "mean": round(sum(t for _, t in alone.values()), 2),
        },
        "interleaved_us": table(interleaved),
        "interleaved_receipt_total_us": {
            "median": round(sum(m for k, (m, _) in interleaved.items() if k != "run"), 2),
            "mean": round(sum(t for k, (_, t) in interleaved.items() if k != "run"), 2),
        },
        "batched_us": table(batched),
        "batched_receipt_total_us": {
            "median": round(sum(m for k, (m, _) in batched.items() if k != "run"), 2),
            "mean": round(sum(t for k, (_, t) in batched.items() if k != "run"), 2),
        },
        "inference_thread_threaded_us": table(threaded),
        "inference_thread_inline_us": table(inline),
        "run_plus_submit_p90_us": {"threaded": round(threaded_p90, 2), "inline": round(inline_p90, 2)},
        "means": "trimmed: slowest 1 % of samples dropped",
        "batch": BATCH,
        "runs": args.runs,
        "started_load_avg_1m": load_start,
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if args.record:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
