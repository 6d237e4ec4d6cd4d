"""Hybrid receipt vs proving the whole reference model in zk, same machine, same run.

Reference model: ~1.07M parameters (MLP body 784-1024-256, head 256-16-2). Per inference:

* ``hybrid_s``: one run of the pipeline producing a composite receipt: the body in the enclave
  service (simulated NSM, receipt + Poseidon commitment of the private boundary), the head proven
  with ezkl (witness + prove) and the receipt assembled. Median of ``--runs`` runs. The head is
  compiled as ``trustdial pipeline split --compile-zk`` does by default: with the prover's tuner
  (cheapest decomposition within ``--tolerance`` of onnxruntime on the calibration samples).
* ``full_zk_s``: witness + prove of the whole model as one ezkl circuit (settings calibrated for
  resources, public input/output, fixed params), in a child process whose peak RSS is reported.

One-time costs (compile, key setup; SRS generation is excluded: production ships a ceremony SRS,
and the development SRS is cached under --srs-cache) are reported separately for both sides.
Last line: one JSON object with hybrid_s, full_zk_s, speedup (target >= 50), and the details.
``--record`` also writes it to bench/results/hybrid.json (shown by ``make demo``).
``--reuse-full-zk FILE`` skips the full-zk proof and copies its ``full_zk_*`` numbers from a
previously recorded JSON; the output then says so (``full_zk_source: "recorded <timestamp>"``).
By default both sides are measured in this run (``full_zk_source: "measured in this run"``).
Run: .venv/bin/python bench/hybrid.py   (full zk at logrows 20: minutes, ~10 GB RAM; progress on stderr)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from prover.compile import DEFAULT_TOLERANCE
from trustdial.pipeline.publish_dev import publish_dev
from trustdial.pipeline.reference_pipeline import write_reference_pipeline
from trustdial.pipeline.run import enclave_for, load_split, run_pipeline
from trustdial.pipeline.spec import load_spec
from trustdial.pipeline.split import ZkOptions, split_pipeline

RESULTS = Path(__file__).resolve().parent / "results" / "hybrid.json"


def log(line: str) -> None:
    print(f"[bench hybrid] {line}", file=sys.stderr, flush=True)


def measure_hybrid(work: Path, runs: int, tolerance: float) -> dict[str, Any]:
    pipeline = write_reference_pipeline(work / "model", "private")
    spec = load_spec(pipeline)
    started = time.perf_counter()
    split = split_pipeline(
        spec, work / "split", samples=2, zk=ZkOptions(dev_srs=True, tolerance=tolerance), progress=log
    )
    (head_segment,) = split.zk
    setup_s = time.perf_counter() - started
    artifacts = load_split(work / "split")
    publication = publish_dev(spec.policy, artifacts, work / "pub")
    signed = publication.manifest.signed.read_bytes()
    enclave = enclave_for(artifacts, spec.policy, signed)
    rng = np.random.default_rng(7)
    times: list[float] = []
    body: list[float] = []
    head: list[float] = []
    try:
        for index in range(runs + 1):
            x = rng.random((1, 784), dtype=np.float32)
            started = time.perf_counter()
            result = run_pipeline(spec, artifacts, {"input": x}, manifest_signed=signed, enclave=enclave)
            elapsed = time.perf_counter() - started
            if index == 0:
                log(f"warm-up run {elapsed:.2f} s (not counted)")
                continue
            times.append(elapsed)
            body.append(result.step_seconds["body"])
            head.append(result.step_seconds["head"])
            log(f"hybrid run {index}: {elapsed:.2f} s (body tee {body[-1] * 1000:.1f} ms, head zk {head[-1]:.2f} s)")
    finally:
        enclave.close()
    settings = json.loads((work / "split" / "zk" / "head" / "settings.json").read_text())
    receipt_bytes = len(json.dumps(result.receipt))
    return {
        "hybrid_s": statistics.median(times),
        "hybrid_body_tee_s": statistics.median(body),
        "hybrid_head_zk_s": statistics.median(head),
        "hybrid_setup_s": setup_s,
        "hybrid_head_logrows": settings["run_args"]["logrows"],
        "hybrid_head_rows": settings["num_rows"],
        "hybrid_head_decomposition": list(head_segment.decomposition),
        "hybrid_head_tuned": head_segment.tuned,
        "hybrid_head_tolerance": head_segment.tolerance,
        "hybrid_receipt_bytes": receipt_bytes,
    }


def measure_full_zk(work: Path, srs_cache: Path) -> dict[str, Any]:
    model = work / "model" / "reference.onnx"
    command = [
        sys.executable, "-m", "trustdial.pipeline.zk_cost", str(model), str(work / "full-zk"),
        "--srs-cache", str(srs_cache),
    ]  # fmt: skip
    log("proving the whole model in one circuit (child process; minutes, ~10 GB)")
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=6 * 3600)
    if done.returncode != 0:
        raise SystemExit(f"full-zk measurement failed with status {done.returncode}")
    cost = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "full_zk_s": cost["witness_s"] + cost["prove_s"],
        "full_zk_prove_s": cost["prove_s"],
        "full_zk_setup_s": cost["settings_s"] + cost["calibrate_s"] + cost["compile_s"] + cost["setup_s"],
        "full_zk_srs_generation_s": cost["srs_s"],
        "full_zk_logrows": cost["logrows"],
        "full_zk_peak_rss_mb": round(cost["peak_rss_mb"], 1),
        "full_zk_pk_bytes": cost["pk_bytes"],
        "full_zk_verify_s": cost["verify_s"],
    }


def recorded_full_zk(path: Path) -> dict[str, Any]:
    """The ``full_zk_*`` numbers of a previously recorded run, and where they come from."""
    recorded = json.loads(path.read_text())
    full = {k: v for k, v in recorded.items() if k.startswith("full_zk_") and k != "full_zk_source"}
    if "full_zk_s" not in full:
        raise SystemExit(f"{path} holds no full_zk_s measurement to reuse")
    when = recorded.get("full_zk_measured_at") or recorded.get("measured_at") or "at an unknown time"
    load = recorded.get("full_zk_load_average_1m", recorded.get("load_average_1m"))
    return {**full, "full_zk_source": f"recorded {when}", "full_zk_measured_at": when, "full_zk_load_average_1m": load}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--srs-cache", type=Path, default=Path.home() / ".cache" / "trustdial")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="tuner: max abs error vs ORT")
    parser.add_argument(
        "--reuse-full-zk",
        type=Path,
        metavar="FILE",
        help="do NOT prove the whole model: reuse the full_zk_* numbers recorded in FILE (said so in the output)",
    )
    parser.add_argument("--record", action="store_true", help="also write bench/results/hybrid.json")
    args = parser.parse_args()
    reused = recorded_full_zk(args.reuse_full_zk) if args.reuse_full_zk is not None else None
    with tempfile.TemporaryDirectory(prefix="trustdial-bench-hybrid-") as scratch:
        work = Path(scratch)
        hybrid = measure_hybrid(work, args.runs, args.tolerance)
        hybrid_load = round(os.getloadavg()[0], 2)
        print(f"hybrid receipt: {hybrid['hybrid_s']:.3f} s per inference (median of {args.runs})")
        if reused is None:
            full = measure_full_zk(work, args.srs_cache)
            full["full_zk_source"] = "measured in this run"
            print(f"full zk proof:  {full['full_zk_s']:.1f} s per inference at logrows {full['full_zk_logrows']}")
        else:
            full = reused
            print(f"full zk proof:  {full['full_zk_s']:.1f} s per inference, {full['full_zk_source']} (NOT re-run)")
    summary = {
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in {**hybrid, **full}.items()},
        "speedup": round(full["full_zk_s"] / hybrid["hybrid_s"], 1),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average_1m": hybrid_load if reused is not None else round(os.getloadavg()[0], 2),
    }
    if args.record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
