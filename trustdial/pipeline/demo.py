"""The hybrid demo (``make demo`` / ``trustdial demo``), on local defaults with no AWS:

1. the ~1.07M-parameter reference model and its pipeline.toml (body ``tee``, head ``zk``,
   private boundary), 2. split + composition check + zk compile (the prover's tuner, as
   ``bench/hybrid_vs_full_zk.py`` compiles it; development SRS),
3. a development EIF with clearly marked synthetic blobs and a locally signed measurement
manifest, 4. one inference through the simulated enclave and the inline prover, 5. the
composite receipt verified with ``trustdial-verify`` (a separate process, as a third party
would), and a tampered copy rejected, 6. a table of steps plus the measured cost of proving the
whole model in zk instead (bench/hybrid_vs_full_zk.py's last measurement, recorded in bench/results/).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trustdial.pipeline.reference_pipeline import write_reference_pipeline

BIN = Path(sys.executable).parent
FULL_ZK_BENCH = "bench/hybrid_vs_full_zk.py"
FULL_ZK_RECORD = Path(__file__).resolve().parents[2] / "bench" / "results" / "hybrid_vs_full_zk.json"
Progress = Callable[[str], None]


@dataclass
class DemoResult:
    workdir: str
    stages: dict[str, float] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    tampered: dict[str, Any] = field(default_factory=dict)
    full_zk: dict[str, Any] | None = None
    receipt_bytes: int = 0
    passed: bool = False


def _command(argv: list[str], progress: Progress) -> subprocess.CompletedProcess[str]:
    progress(" ".join(Path(a).name if a.startswith("/") else a for a in argv))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{Path(argv[0]).name} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done


def run_demo(workdir: Path, progress: Progress) -> DemoResult:
    result = DemoResult(workdir=str(workdir))
    trustdial, verify = str(BIN / "trustdial"), str(BIN / "trustdial-verify")

    def stage(name: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
        started = time.perf_counter()
        done = _command(argv, progress)
        result.stages[name] = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
        return done

    started = time.perf_counter()
    pipeline = write_reference_pipeline(workdir / "model", "private")
    result.stages["reference model"] = time.perf_counter() - started
    split, pub = workdir / "split", workdir / "published"
    stage(
        "split + zk compile",
        [trustdial, "pipeline", "split", str(pipeline), "--output", str(split), "--compile-zk", "--dev-srs"],
    )  # fmt: skip
    stage("dev image + manifest", [trustdial, "pipeline", "publish-dev", str(pipeline), "--split", str(split),
                                   "--output", str(pub)])  # fmt: skip
    given = workdir / "request.json"
    x = np.random.default_rng(2026).random((1, 784), dtype=np.float32)
    given.write_text(json.dumps({"input": {"dtype": "float32", "shape": [1, 784],
                                           "data": base64.b64encode(x.astype("<f4").tobytes()).decode()}}))  # fmt: skip
    receipt, root = workdir / "receipt.json", workdir / "simulated-nsm-root.pem"
    nonce = os.urandom(32).hex()  # the caller's: the verifier checks the receipt answers this request
    stage(
        "pipeline run",
        [trustdial, "pipeline", "run", str(pipeline), "--split", str(split), "--input", str(given), "--local",
         "--measurements", str(pub / "manifest.cose"), "--output", str(receipt), "--root-out", str(root),
         "--nonce", nonce, "--json"],
    )  # fmt: skip
    result.receipt_bytes = receipt.stat().st_size
    verify_args = [
        "--measurements", str(pub / "manifest.cose"), "--manifest-key", str(pub / "manifest-signing-dev.pub.pem"),
        "--policy", str(pipeline), "--zk-artifacts", str(split / "zk"), "--root", str(root), "--allow-dev-srs",
        "--nonce", nonce, "--json",
    ]  # fmt: skip
    started = time.perf_counter()
    done = _command([verify, "receipt", str(receipt), *verify_args], progress)
    result.stages["trustdial-verify"] = time.perf_counter() - started
    result.verification = json.loads(done.stdout)
    tampered = workdir / "receipt-tampered.json"
    document = json.loads(receipt.read_text())
    document["steps"][1]["mode"] = "tee"  # claim the head needed only the enclave
    document["steps"][1]["evidence"] = document["steps"][0]["evidence"]
    tampered.write_text(json.dumps(document))
    result.tampered = json.loads(_command([verify, "receipt", str(tampered), *verify_args], progress).stdout)
    if FULL_ZK_RECORD.is_file():
        result.full_zk = json.loads(FULL_ZK_RECORD.read_text())
    result.passed = result.verification.get("valid") is True and result.tampered.get("valid") is False
    return result


def print_report(result: DemoResult) -> None:
    v = result.verification
    print("trustdial demo: one inference, body attested in a (simulated) enclave, decision head proven in zk")
    print("  DEVELOPMENT SETUP: synthetic EIF blobs, simulated NSM, insecure dev SRS, locally generated manifest key")
    print()
    print(f"  {'step':<8} {'mode':<8} {'required':<9} {'time':>10} {'evidence':>10}  proven by")
    for step in v.get("steps", []):
        seconds = f"{step['seconds']:.3f} s" if step.get("seconds") is not None else "-"
        print(
            f"  {step['segment']:<8} {step['mode']:<8} {step['required_mode']:<9} {seconds:>10} "
            f"{step['evidence_bytes']:>8} B  {step['proven_by'][0]}"
        )
    print(f"  composite receipt: {result.receipt_bytes} bytes, policy {v.get('policy_sha256', '?')[:16]}...")
    if "outputs" in v:
        print(f"  verified decision: {v['outputs']}")
    print()
    for name, stage_s in result.stages.items():
        print(f"  stage {name:<22} {stage_s:8.2f} s")
    print()
    if result.full_zk is not None:
        for line in full_zk_lines(result.full_zk):
            print(line)
    else:
        print(f"  proving the whole model in zk instead: not measured yet (run: .venv/bin/python {FULL_ZK_BENCH})")
    code = result.tampered.get("code")
    print(f"  tampered copy (head downgraded zk -> tee): {'rejected [' + str(code) + ']' if code else 'ACCEPTED'}")
    print()
    if result.passed:
        print("VERDICT: VERIFIED - every step, every link and the policy checked out; the downgrade was refused")
    else:
        print(f"VERDICT: NOT VERIFIED - {v.get('code')}: {v.get('reason')}")


def _load(value: Any) -> str:
    if isinstance(value, dict):
        return f"1-min load mean {value.get('mean', '?')}, max {value.get('max', '?')}"
    return f"load {value}"


def full_zk_lines(z: dict[str, Any]) -> list[str]:
    """The recorded comparison of ``FULL_ZK_BENCH``: the whole model proven in zk against both hybrid receipts."""
    when = z.get("full_zk_measured_at", z.get("measured_at", "?"))
    lines = [
        f"  proving the WHOLE model in zk instead ({FULL_ZK_BENCH}, {when}, {_load(z.get('full_zk_load_average_1m'))}):"
        f" {z['full_zk_s']:.0f} s per inference at logrows {z.get('full_zk_logrows', '?')},"
        f" peak RSS {z.get('full_zk_peak_rss_mb', 0) / 1024:.1f} GB,"
        f" +{z.get('full_zk_setup_s', 0):.0f} s one-time calibration and key setup"
    ]
    boundaries = z.get("boundaries")
    if isinstance(boundaries, dict):
        for name, measured in boundaries.items():
            mark = " <- this pipeline" if name == "private" else ""
            lines.append(
                f"    hybrid, {name} boundary: {measured['hybrid_s']:.2f} s (head zk at logrows "
                f"{measured.get('head_logrows', '?')}) -> {z['full_zk_s'] / measured['hybrid_s']:.0f}x{mark}"
            )
        source = z.get("full_zk_source", "?")
        same_run = source == "measured in this run"
        lines.append(
            "    (hybrid runs taken before and after the full-zk proof, in the same run)"
            if same_run
            else f"    (full-zk numbers {source}, NOT re-measured with the hybrid runs)"
        )
    else:
        lines.append(f"    hybrid {z['hybrid_s']:.1f} s (measured {z.get('measured_at', '?')}): {z['speedup']:.0f}x")
    return lines
