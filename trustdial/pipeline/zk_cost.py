"""Measure what proving an ONNX model with ezkl costs on this machine, honestly: every phase
from settings to a verified proof, wall time per phase, and the peak RSS of the process that
did it. Run as a child process (``python -m trustdial.pipeline.zk_cost``) so the peak RSS is
the proving's own and not the caller's.

Uses a locally generated development SRS (``ezkl.gen_srs``; never ``get_srs``, which needs
the network). Its generation time is reported separately: a production deployment ships the
ceremony SRS file instead of generating it.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from trustdial_verifier.unstable.proof import ezkl_calls

from prover import ezkl_api

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ZkCost:
    model: str
    logrows: int
    settings_s: float
    calibrate_s: float
    compile_s: float
    srs_s: float
    setup_s: float
    witness_s: float
    prove_s: float
    verify_s: float
    proof_bytes: int
    pk_bytes: int
    peak_rss_mb: float
    input_visibility: str
    output_visibility: str

    @property
    def total_s(self) -> float:
        """Everything a first proof of this model costs, except generating the dev SRS."""
        return self.settings_s + self.calibrate_s + self.compile_s + self.setup_s + self.witness_s + self.prove_s


def measure(
    model: Path,
    workdir: Path,
    *,
    input_visibility: str = "public",
    output_visibility: str = "public",
    calibration_samples: int = 4,
    seed: int = 1,
    srs_cache: Path | None = None,
    progress: Progress = lambda _line: None,
) -> ZkCost:
    workdir.mkdir(parents=True, exist_ok=True)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (spec,) = session.get_inputs()
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in spec.shape]
    rng = np.random.default_rng(seed)
    calibration = [rng.random(shape, dtype=np.float32).ravel().tolist() for _ in range(calibration_samples)]
    sample = rng.random(shape, dtype=np.float32).ravel().tolist()
    cal_path, input_path = workdir / "calibration.json", workdir / "input.json"
    cal_path.write_text(json.dumps({"input_data": [[v for sample_values in calibration for v in sample_values]]}))
    input_path.write_text(json.dumps({"input_data": [sample]}))
    settings, compiled = workdir / "settings.json", workdir / "model.compiled"
    srs, vk, pk = workdir / "kzg.srs", workdir / "vk.key", workdir / "pk.key"
    witness, proof = workdir / "witness.json", workdir / "proof.json"

    run_args = ezkl_api.run_args(input_visibility, output_visibility)

    def timed(label: str, call: Callable[[], object]) -> float:
        progress(f"{label} ...")
        start = time.perf_counter()
        call()
        elapsed = time.perf_counter() - start
        progress(f"{label} done in {elapsed:.1f} s")
        return elapsed

    settings_s = timed("gen_settings", lambda: ezkl_api.gen_settings(model, settings, run_args))
    calibrate_s = timed(
        "calibrate_settings",
        lambda: ezkl_api.calibrate_settings(cal_path, model, settings),
    )
    compile_s = timed("compile_circuit", lambda: ezkl_api.compile_circuit(model, compiled, settings))
    logrows = int(json.loads(settings.read_text())["run_args"]["logrows"])
    progress(f"circuit needs 2^{logrows} rows")
    cached = srs_cache / f"dev-kzg{logrows}.srs" if srs_cache is not None else None
    if cached is not None and cached.is_file():
        progress(f"reusing development SRS {cached} (its generation time is not part of proving)")
        shutil.copyfile(cached, srs)
        srs_s = 0.0
    else:
        srs_s = timed(f"gen_srs (dev, k={logrows})", lambda: ezkl_api.gen_srs(srs, logrows))
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(srs, cached)
    setup_s = timed("setup", lambda: ezkl_api.setup(compiled, vk, pk, srs))
    witness_s = timed("gen_witness", lambda: ezkl_api.gen_witness(input_path, compiled, witness))
    prove_s = timed("prove", lambda: ezkl_api.prove(witness, compiled, pk, proof, srs))
    verify_s = timed("verify", lambda: ezkl_calls.verify_proof_file(proof, settings, vk, srs))
    proof_bytes = len(json.loads(proof.read_text())["proof"])  # the proof as a list of byte values
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ZkCost(
        model=str(model),
        logrows=logrows,
        settings_s=settings_s,
        calibrate_s=calibrate_s,
        compile_s=compile_s,
        srs_s=srs_s,
        setup_s=setup_s,
        witness_s=witness_s,
        prove_s=prove_s,
        verify_s=verify_s,
        proof_bytes=proof_bytes,
        pk_bytes=pk.stat().st_size,
        peak_rss_mb=peak_kb / 1024,
        input_visibility=input_visibility,
        output_visibility=output_visibility,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("model", type=Path)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--input-visibility", default="public")
    parser.add_argument("--output-visibility", default="public")
    parser.add_argument("--srs-cache", type=Path, help="directory to reuse/store the development SRS in")
    args = parser.parse_args(argv)
    cost = measure(
        args.model,
        args.workdir,
        input_visibility=args.input_visibility,
        output_visibility=args.output_visibility,
        srs_cache=args.srs_cache,
        progress=lambda line: print(f"[zk cost] {line}", file=sys.stderr, flush=True),
    )
    print(json.dumps({**asdict(cost), "total_s": cost.total_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
