"""ezkl cost with default settings vs ``--tune``, against onnxruntime in the same process.

Models: a ~1k-parameter MLP head and a ~100k-parameter MLP (built with onnx.helper). For each
model and setting: onnxruntime batch-1 median latency, logrows, prove time (around ezkl.prove
only, in a child process), the child's peak RSS, proof size, and verify time (trustdial's
verify_proof, including the artifact hash checks). Both settings must give identical
verification outcomes (genuine proof accepted, tampered instance rejected).

Last line: one JSON object with default_prove_s, tuned_prove_s, speedup, prove_over_infer (head).
Run: .venv/bin/python bench/zk_tune.py [--models head] [--repeat 3] [--record]   (progress on stderr)
Each circuit gets a dev SRS of exactly its logrows: loading and downsizing a larger SRS costs
minutes at k=17 and would be counted inside ezkl.prove.
Prove time is the minimum over --repeat runs, to damp noise from other load on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from json_line import emit
from trustdial_verifier.errors import VerificationError
from trustdial_verifier.unstable.proof import canonical_tensor_json, load_tensor_file, sha256_file, verify_proof

from prover.circuit_settings import CircuitOptions
from prover.compile import compile_model
from prover.console import progress
from prover.example_models import build_mlp, parameter_count, save_mlp
from prover.tune import tune

MODELS = {"head": [32, 24, 8], "mlp_100k": [256, 256, 128, 64, 10]}
CALIBRATION_SAMPLES = 16
RESULTS = Path(__file__).resolve().parent / "results" / "zk_tune.json"
ORT_RUNS = 2000

CHILD = """
import json, sys, time, ezkl
from trustdial_verifier.unstable.proof import load_tensor_file
art, tensor_path, witness, proof = sys.argv[1:5]
tensor = load_tensor_file(__import__("pathlib").Path(tensor_path), side="input")
data = witness + ".input.json"
open(data, "w").write(json.dumps({"input_data": [list(tensor.values)]}))
ezkl.gen_witness(data, art + "/network.compiled", witness)
started = time.perf_counter()
ezkl.prove(witness, art + "/network.compiled", art + "/pk.key", proof, srs_path=art + "/kzg.srs")
print(json.dumps({"prove_s": time.perf_counter() - started}))
"""


def ort_median_s(model: Path, sample: np.ndarray) -> float:
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: sample}
    for _ in range(200):
        session.run(None, feed)
    times = []
    for _ in range(ORT_RUNS):
        started = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def prove_in_child(artifacts: Path, tensor: Path, proof: Path) -> tuple[float, int]:
    """(prove seconds, child peak RSS bytes) from a fresh process, so RSS is this proof's alone."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(artifacts), str(tensor), str(proof.with_suffix(".witness.json")), str(proof)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"prover child failed with status {child.returncode}")
    prove_s = float(json.loads(output.strip().splitlines()[-1])["prove_s"])
    return prove_s, usage.ru_maxrss * 1024


def verification_outcomes(proof: Path, artifacts: Path, tensor: Path, scratch: Path) -> tuple[tuple[str, str], float]:
    inputs = load_tensor_file(tensor, side="input")
    # this process compiled the artifacts itself, so its own digests are the trusted pins
    pins = {"vk": sha256_file(artifacts / "vk.key"), "settings": sha256_file(artifacts / "settings.json")}
    started = time.perf_counter()
    verify_proof(proof, artifacts, inputs=inputs, allow_dev_srs=True, expected_sha256=pins)
    verify_s = time.perf_counter() - started
    doc = json.loads(proof.read_text())
    last = doc["instances"][0][-1]
    doc["instances"][0][-1] = format((int(last[:2], 16) + 1) % 256, "02x") + last[2:]
    tampered = scratch / "tampered.json"
    tampered.write_text(json.dumps(doc))
    try:
        verify_proof(tampered, artifacts, inputs=inputs, allow_dev_srs=True, expected_sha256=pins)
        tampered_outcome = "accepted"
    except VerificationError as err:
        tampered_outcome = err.code
    return ("accepted", tampered_outcome), verify_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--repeat", type=int, default=3, help="prove runs per setting (min is reported)")
    parser.add_argument("--tolerance", type=float, default=1e-2, help="max abs error vs onnxruntime for --tune")
    parser.add_argument("--record", action="store_true", help=f"also write the JSON line to {RESULTS.name}")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rng = np.random.default_rng(0)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="trustdial-bench-zk-") as scratch_name:
        scratch = Path(scratch_name)
        for name in args.models:
            sizes = MODELS[name]
            model = save_mlp(scratch / f"{name}.onnx", sizes, seed=1)
            params = parameter_count(build_mlp(sizes, seed=1))
            calibration = scratch / f"{name}-cal.json"
            calibration.write_text(
                json.dumps({"input_data": [rng.normal(size=sizes[0] * CALIBRATION_SAMPLES).tolist()]})
            )
            sample = rng.normal(size=(1, sizes[0])).astype(np.float32)
            tensor = scratch / f"{name}-input.json"
            tensor.write_text(json.dumps(canonical_tensor_json(sample.ravel().tolist(), [1, sizes[0]])))
            ort_s = ort_median_s(model, sample)
            progress("bench zk", f"{name}: {params} params, onnxruntime median {ort_s * 1e6:.1f} us")
            started = time.perf_counter()
            tuned_options, _ = tune(model, calibration, CircuitOptions(), tolerance=args.tolerance)
            tune_s = time.perf_counter() - started
            results[name] = {"params": params, "ort_s": ort_s, "tune_s": round(tune_s, 2)}
            for mode, options in (("default", CircuitOptions()), ("tuned", tuned_options)):
                out = scratch / f"{name}-{mode}"
                started = time.perf_counter()
                artifacts = compile_model(model, calibration, out, dev_srs=True, options=options)
                compile_s = time.perf_counter() - started
                proof = out / "proof.json"
                runs = [prove_in_child(out, tensor, proof) for _ in range(args.repeat)]
                prove_s = min(r[0] for r in runs)
                rss = max(r[1] for r in runs)
                outcomes, verify_s = verification_outcomes(proof, out, tensor, scratch)
                results[name][mode] = {
                    "logrows": artifacts.logrows,
                    "decomp": [options.decomp_base or 16384, options.decomp_legs or 2],
                    "compile_s": round(compile_s, 3),
                    "prove_s": round(prove_s, 3),
                    "prove_runs_s": [round(r[0], 3) for r in runs],
                    "prove_peak_rss_mb": round(rss / 2**20, 1),
                    "proof_bytes": len(bytes.fromhex(json.loads(proof.read_text())["hex_proof"].removeprefix("0x"))),
                    "proof_json_bytes": proof.stat().st_size,
                    "pk_mb": round((out / "pk.key").stat().st_size / 2**20, 1),
                    "verify_s": round(verify_s, 4),
                    "outcomes": list(outcomes),
                    "prove_over_infer": round(prove_s / ort_s),
                }
                progress("bench zk", f"{name} {mode}: {json.dumps(results[name][mode])}")
            same = results[name]["default"]["outcomes"] == results[name]["tuned"]["outcomes"]
            results[name]["identical_outcomes"] = same
            results[name]["speedup"] = round(results[name]["default"]["prove_s"] / results[name]["tuned"]["prove_s"], 2)
            print(json.dumps({"model": name, **results[name]}), flush=True)
    summary: dict[str, Any] = {}
    if "head" in results:
        head = results["head"]
        summary.update(
            default_prove_s=head["default"]["prove_s"],
            tuned_prove_s=head["tuned"]["prove_s"],
            speedup=head["speedup"],
            prove_over_infer=head["tuned"]["prove_over_infer"],
            prove_over_infer_default=head["default"]["prove_over_infer"],
            head_logrows=[head["default"]["logrows"], head["tuned"]["logrows"]],
            identical_outcomes=head["identical_outcomes"],
        )
    if "mlp_100k" in results:
        big = results["mlp_100k"]
        summary.update(
            mlp_100k_speedup=big["speedup"],
            mlp_100k_default_prove_s=big["default"]["prove_s"],
            mlp_100k_tuned_prove_s=big["tuned"]["prove_s"],
            mlp_100k_logrows=[big["default"]["logrows"], big["tuned"]["logrows"]],
        )
    summary.update(
        load_avg_1m_start=round(load_before, 2),
        load_avg_1m_end=round(os.getloadavg()[0], 2),
        cores=os.cpu_count(),
        measured_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    emit(summary, RESULTS, args.record)


if __name__ == "__main__":
    main()
