"""``--tune``: search ezkl settings for the cheapest circuit that stays accurate.

ezkl's default decomposition (base 16384, 2 legs) needs a 2^14-row range table, so even a
tiny segment pays logrows >= 15. Smaller bases with more legs shrink the table. For each
candidate decomposition we build calibrated settings, compile, run the quantized circuit
(``gen_witness``) on calibration samples, compare with onnxruntime, and check the constraints
with ezkl's MockProver. Among accurate candidates the one with the fewest logrows wins, then
the fewest rows: proving time and memory scale with 2^logrows (measured ~x2.1 per logrow).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from trustdial_verifier.unstable.proof import ezkl_calls

from prover import ezkl_api
from prover.calibration import load_samples, reference_outputs
from prover.circuit_settings import CircuitOptions, write_settings
from prover.console import ezkl_prints_to_stderr, progress
from prover.errors import ProverError

# (base, legs); None keeps ezkl's default (16384, 2) as the baseline candidate.
DECOMPOSITIONS: tuple[tuple[int, int] | None, ...] = (None, (4096, 2), (1024, 3), (256, 4), (128, 4), (64, 5), (16, 7))
TUNE_SAMPLES = 8


@dataclass(frozen=True)
class Candidate:
    options: CircuitOptions
    logrows: int
    num_rows: int
    max_abs_error: float
    accepted: bool
    note: str


def tune(
    model: Path, calibration: Path, base: CircuitOptions, *, tolerance: float
) -> tuple[CircuitOptions, list[Candidate]]:
    samples = load_samples(calibration, model)[:TUNE_SAMPLES]
    expected = reference_outputs(model, samples)
    candidates: list[Candidate] = []
    with tempfile.TemporaryDirectory(prefix="trustdial-tune-") as scratch:
        work = Path(scratch)
        for decomposition in DECOMPOSITIONS:
            options = base if decomposition is None else base.with_decomposition(*decomposition)
            candidate = _evaluate(model, calibration, options, samples, expected, work, tolerance)
            verdict = "ok" if candidate.accepted else "rejected: " + candidate.note
            label = "default" if decomposition is None else f"base={decomposition[0]} legs={decomposition[1]}"
            progress(
                "zk tune",
                f"{label}: logrows={candidate.logrows} rows={candidate.num_rows} "
                f"max_abs_err={candidate.max_abs_error:.2e} {verdict}",
            )
            candidates.append(candidate)
    accepted = [c for c in candidates if c.accepted]
    if not accepted:
        raise ProverError("TUNE_NO_CANDIDATE", f"no setting kept outputs within {tolerance} of onnxruntime")
    best = min(accepted, key=lambda c: (c.logrows, c.num_rows))
    progress(
        "zk tune",
        f"chose decomp_base={best.options.decomp_base} legs={best.options.decomp_legs}, logrows={best.logrows}",
    )
    return best.options, candidates


def _evaluate(
    model: Path,
    calibration: Path,
    options: CircuitOptions,
    samples: list[np.ndarray],
    expected: list[np.ndarray],
    work: Path,
    tolerance: float,
) -> Candidate:
    settings_path = work / "settings.json"
    compiled = work / "network.compiled"
    try:
        settings = write_settings(model, calibration, settings_path, options)
        ezkl_api.compile_circuit(model, compiled, settings_path)
    except (ProverError, RuntimeError) as err:
        return Candidate(options, -1, -1, float("inf"), False, f"settings failed: {err}")
    logrows = int(settings["run_args"]["logrows"])
    rows = int(settings.get("num_rows", 0))
    scale = int(settings["model_output_scales"][0])
    worst = 0.0
    try:
        for index, (sample, want) in enumerate(zip(samples, expected, strict=True)):
            data = work / "sample.json"
            data.write_text(json.dumps({"input_data": [sample.ravel().tolist()]}), encoding="utf-8")
            witness_path = work / "witness.json"
            with ezkl_prints_to_stderr():
                witness = ezkl_api.gen_witness(data, compiled, witness_path)
                if index == 0:
                    ezkl_api.mock(witness_path, compiled)
            got = np.array([ezkl_calls.felt_to_float(f, scale) for f in witness["outputs"][0]])
            worst = max(worst, float(np.max(np.abs(got - want))))
    except RuntimeError as err:
        return Candidate(options, logrows, rows, float("inf"), False, f"circuit failed: {str(err)[:120]}")
    if worst > tolerance:
        return Candidate(options, logrows, rows, worst, False, f"error {worst:.2e} > tolerance {tolerance}")
    return Candidate(options, logrows, rows, worst, True, "")
