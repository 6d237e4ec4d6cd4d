"""Hybrid receipt vs proving the whole reference model in zk, same machine, same run.

Reference model: ~1.07M parameters (MLP body 784-1309-32, head 32-16-2; see
trustdial/pipeline/reference_model.py). Per inference:

* ``hybrid_<boundary>_s`` for both boundary visibilities of the ``embedding`` tensor (private:
  the enclave signs its Poseidon hash and the head's circuit hashes it; public: its values travel
  in the receipt): one run of the pipeline producing a composite receipt — the body in the enclave
  service (simulated NSM, signed receipt), the head proven with ezkl (artifact hash check, witness,
  prove) and the receipt assembled. Both heads are compiled as ``trustdial pipeline split
  --compile-zk`` does by default (the prover's tuner, within ``--tolerance`` of onnxruntime).
  Runs alternate between the two pipelines and are taken in two batches, one BEFORE and one AFTER
  the full-zk proof, so machine load during the long proof affects both sides; the value is the
  median of all runs (each batch's median is reported too).
* ``hybrid_s`` and ``speedup`` are those of the pipeline ``make demo`` uses (private boundary,
  named in ``speedup_pipeline``); ``speedup_public`` is the same ratio for the public boundary.
* ``full_zk_s``: witness + prove of the whole model as one ezkl circuit (settings calibrated for
  resources, public input/output — cheaper than hashing the input — fixed params), in a child
  process whose peak RSS is reported. It keeps ezkl's default decomposition: the tuner's
  candidates only shrink the range table, and at ~580k rows (logrows 20) that table is not what
  bounds the circuit.

One-time costs (compile, key setup; SRS generation is excluded: production ships a ceremony SRS,
and the development SRS is cached under --srs-cache) are reported separately for both sides.
``boundaries.<b>.breakdown`` splits one extra run into its parts (tee body, artifact hash check,
witness, prove) and adds ``third_party_verify_s``, what checking the proof costs a verifier (not
part of hybrid_s).
The 1-minute load average is sampled every few seconds during each phase (mean and max).
Last line: one JSON object with hybrid_s, full_zk_s, speedup (target >= 50), and the details.
``--record`` also writes it to bench/results/hybrid_vs_full_zk.json (shown by ``make demo``).
``--reuse-full-zk FILE`` skips the full-zk proof and copies its ``full_zk_*`` numbers from a
previously recorded JSON; the output then says so (``full_zk_source: "recorded <timestamp>"``).
Run: .venv/bin/python bench/hybrid_vs_full_zk.py   (full zk at logrows 20: ~15 min, ~10 GB RAM; progress on stderr)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ezkl
import numpy as np
from trustdial_verifier.unstable.proof import check_file_hashes, load_artifacts

from prover.compile import DEFAULT_TOLERANCE
from prover.prove import PROVER_ROLES
from trustdial.pipeline.publish_dev import publish_dev
from trustdial.pipeline.reference_model import LAYERS, build_reference_model
from trustdial.pipeline.reference_pipeline import write_reference_pipeline
from trustdial.pipeline.run import LocalEnclave, SplitArtifacts, enclave_for, load_split, run_pipeline
from trustdial.pipeline.spec import PipelineSpec, load_spec
from trustdial.pipeline.split import ZkOptions, split_pipeline

RESULTS = Path(__file__).resolve().parent / "results" / "hybrid_vs_full_zk.json"
BOUNDARIES = ("private", "public")
DEMO_BOUNDARY = "private"  # trustdial/pipeline/demo.py runs the reference pipeline with a private boundary


def log(line: str) -> None:
    print(f"[bench hybrid] {line}", file=sys.stderr, flush=True)


class LoadSampler:
    """The 1-minute load average, sampled at start, every ``every_s`` and at the end."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.samples: list[float] = []
        self._every = every_s
        self._done = threading.Event()

    @contextmanager
    def running(self) -> Iterator[LoadSampler]:
        self.samples.append(os.getloadavg()[0])
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._done.set()
            thread.join()
            self.samples.append(os.getloadavg()[0])

    def _loop(self) -> None:
        while not self._done.wait(self._every):
            self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        return {"mean": round(statistics.fmean(self.samples), 2), "max": round(max(self.samples), 2)}


@dataclass
class Pipeline:
    boundary: str
    spec: PipelineSpec
    split: SplitArtifacts
    signed_manifest: bytes
    enclave: LocalEnclave
    setup_s: float
    details: dict[str, Any]
    totals: dict[str, list[float]] = field(default_factory=lambda: {"before": [], "after": []})
    body: list[float] = field(default_factory=list)
    head: list[float] = field(default_factory=list)
    overhead: list[float] = field(default_factory=list)
    receipt_bytes: int = 0


def prepare(work: Path, boundary: str, tolerance: float) -> Pipeline:
    """reference model + pipeline.toml, split with the tuned zk compile, dev image + signed manifest."""
    root = work / boundary
    spec = load_spec(write_reference_pipeline(root / "model", boundary))
    started = time.perf_counter()
    result = split_pipeline(
        spec, root / "split", samples=2, zk=ZkOptions(dev_srs=True, tolerance=tolerance), progress=log
    )
    setup_s = time.perf_counter() - started
    (head,) = result.zk
    split = load_split(root / "split")
    signed = publish_dev(spec.policy, split, root / "pub").manifest.signed.read_bytes()
    settings = json.loads((split.zk_dirs["head"] / "settings.json").read_text())
    details = {
        "head_logrows": settings["run_args"]["logrows"],
        "head_rows": settings["num_rows"],
        "head_decomposition": list(head.decomposition),
        "head_tuned": head.tuned,
        "head_tolerance": head.tolerance,
        "head_pk_bytes": (split.zk_dirs["head"] / "pk.key").stat().st_size,
    }
    log(f"{boundary} boundary: head at logrows {details['head_logrows']} ({details['head_rows']} rows)")
    return Pipeline(boundary, spec, split, signed, enclave_for(split, spec.policy, signed), setup_s, details)


def run_batch(pipelines: list[Pipeline], runs: int, batch: str, rng: np.random.Generator) -> None:
    """One warm-up run per pipeline, then ``runs`` runs each, alternating between the pipelines."""
    for index in range(runs + 1):
        x = rng.random((1, LAYERS[0][1]), dtype=np.float32)
        for p in pipelines:
            started = time.perf_counter()
            result = run_pipeline(p.spec, p.split, {"input": x}, manifest_signed=p.signed_manifest, enclave=p.enclave)
            elapsed = time.perf_counter() - started
            if index == 0:
                log(f"{batch} {p.boundary}: warm-up run {elapsed:.2f} s (not counted)")
                continue
            body, head = result.step_seconds["body"], result.step_seconds["head"]
            p.totals[batch].append(elapsed)
            p.body.append(body)
            p.head.append(head)
            p.overhead.append(elapsed - body - head)
            p.receipt_bytes = len(json.dumps(result.receipt))
            parts = f"body tee {body * 1000:.1f} ms, head zk {head:.2f} s"
            log(f"{batch} {p.boundary} run {index}: {elapsed:.2f} s ({parts})")


def timed_batch(pipelines: list[Pipeline], runs: int, batch: str, rng: np.random.Generator) -> dict[str, float]:
    """``run_batch`` with the machine's load sampled while it runs."""
    sampler = LoadSampler()
    with sampler.running():
        run_batch(pipelines, runs, batch, rng)
    return sampler.summary()


def breakdown(p: Pipeline, x: np.ndarray, scratch: Path) -> dict[str, float]:
    """One inference taken apart: what the parts of hybrid_s cost, and the third party's verify."""
    directory = p.split.zk_dirs["head"]
    artifacts = load_artifacts(directory)
    scale = artifacts.input_scale if p.boundary == "private" else None
    timings: dict[str, float] = {}

    def timed(name: str, call: Any) -> Any:
        started = time.perf_counter()
        value = call()
        timings[name] = round(time.perf_counter() - started, 4)
        return value

    outputs, _, _ = timed("tee_body_s", lambda: p.enclave.infer("body", {"input": x}, os.urandom(32), scale))
    embedding = np.asarray(outputs["embedding"], dtype=np.float32)
    paths = timed("zk_artifact_hash_check_s", lambda: check_file_hashes(directory, artifacts, PROVER_ROLES))
    data, witness, proof = scratch / "input.json", scratch / "witness.json", scratch / "proof.json"
    data.write_text(json.dumps({"input_data": [embedding.ravel().tolist()]}))
    compiled, srs = str(paths["compiled_circuit"]), str(paths["srs"])
    timed("zk_witness_s", lambda: ezkl.gen_witness(str(data), compiled, str(witness)))
    timed("zk_prove_s", lambda: ezkl.prove(str(witness), compiled, str(paths["pk"]), str(proof), srs_path=srs))
    vk, settings = str(directory / "vk.key"), str(directory / "settings.json")
    timed("third_party_verify_s", lambda: ezkl.verify(str(proof), settings, vk, srs_path=srs))
    return timings


def summarize(p: Pipeline, x: np.ndarray, scratch: Path) -> dict[str, Any]:
    everything = p.totals["before"] + p.totals["after"]
    return {
        "hybrid_s": statistics.median(everything),
        "runs_s": [round(v, 3) for v in everything],
        "before_full_zk_median_s": statistics.median(p.totals["before"]),
        "after_full_zk_median_s": statistics.median(p.totals["after"]),
        "body_tee_s": statistics.median(p.body),
        "head_zk_s": statistics.median(p.head),
        "receipt_assembly_s": statistics.median(p.overhead),
        "setup_s": p.setup_s,
        "receipt_bytes": p.receipt_bytes,
        **p.details,
        "breakdown": breakdown(p, x, scratch),
    }


def measure_full_zk(work: Path, srs_cache: Path) -> dict[str, Any]:
    model = work / "private" / "model" / "reference.onnx"
    command = [
        sys.executable, "-m", "trustdial.pipeline.zk_cost", str(model), str(work / "full-zk"),
        "--srs-cache", str(srs_cache),
    ]  # fmt: skip
    log("proving the whole model in one circuit (child process; ~15 min with key setup, ~10 GB)")
    load = LoadSampler(every_s=10.0)
    with load.running():
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
        "full_zk_source": "measured in this run",
        "full_zk_measured_at": now(),
        "full_zk_load_average_1m": load.summary(),
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


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="counted runs per pipeline in each of the two batches")
    parser.add_argument("--srs-cache", type=Path, default=Path.home() / ".cache" / "trustdial")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="tuner: max abs error vs ORT")
    parser.add_argument(
        "--reuse-full-zk",
        type=Path,
        metavar="FILE",
        help="do NOT prove the whole model: reuse the full_zk_* numbers recorded in FILE (said so in the output)",
    )
    parser.add_argument("--record", action="store_true", help="also write bench/results/hybrid_vs_full_zk.json")
    args = parser.parse_args()
    reused = recorded_full_zk(args.reuse_full_zk) if args.reuse_full_zk is not None else None
    rng = np.random.default_rng(7)
    loads: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="trustdial-bench-hybrid-") as scratch:
        work = Path(scratch)
        pipelines = [prepare(work, boundary, args.tolerance) for boundary in BOUNDARIES]
        try:
            loads["hybrid_before_full_zk"] = timed_batch(pipelines, args.runs, "before", rng)
            full = reused if reused is not None else measure_full_zk(work, args.srs_cache)
            print(f"full zk proof: {full['full_zk_s']:.1f} s per inference ({full['full_zk_source']})")
            loads["hybrid_after_full_zk"] = timed_batch(pipelines, args.runs, "after", rng)
            x = rng.random((1, LAYERS[0][1]), dtype=np.float32)
            boundaries = {p.boundary: summarize(p, x, work) for p in pipelines}
        finally:
            for p in pipelines:
                p.enclave.close()
    for boundary, measured in boundaries.items():
        print(f"hybrid receipt, {boundary} boundary: {measured['hybrid_s']:.3f} s per inference")
    demo = boundaries[DEMO_BOUNDARY]
    summary = {
        "hybrid_s": demo["hybrid_s"],
        "full_zk_s": full["full_zk_s"],
        "speedup": round(full["full_zk_s"] / demo["hybrid_s"], 1),
        "speedup_pipeline": f"{DEMO_BOUNDARY} embedding boundary (the reference pipeline make demo runs)",
        **{f"hybrid_{b}_s": boundaries[b]["hybrid_s"] for b in BOUNDARIES},
        **{f"speedup_{b}": round(full["full_zk_s"] / boundaries[b]["hybrid_s"], 1) for b in BOUNDARIES},
        "model": "body 784-1309-32 (tee), head 32-16-2 (zk), cut at 'embedding'",
        "model_parameters": build_reference_model().parameter_count,
        "boundaries": boundaries,
        **{k: v for k, v in full.items() if k != "full_zk_s"},
        "load_average_1m": loads,
        "runs_per_batch": args.runs,
        "measured_at": now(),
    }
    summary = rounded(summary)
    if args.record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
