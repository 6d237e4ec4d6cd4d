"""Compile the ``zk`` segments of a split pipeline with the prover (``prover.compile_model``):
boundary visibility from the policy (private -> ezkl ``hashed``, public -> ``public``), and
calibration on the tensors that really reach the segment (the upstream segments run on
sample inputs), not on random data. Returns the entries the measurement manifest pins.

By default the prover's tuner (``prover.tune``) picks the decomposition: it keeps the cheapest
circuit whose quantized outputs stay within ``tolerance`` of onnxruntime on those calibration
samples (and pass ezkl's mock prover). An explicit ``decomposition`` or ``tune=False`` skips it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from trustdial_verifier.unstable.composite import MODE_TEE, PipelinePolicy

from prover.circuit_settings import CircuitOptions
from prover.compile import DEFAULT_TOLERANCE, compile_model
from trustdial.pipeline.errors import PipelineError

Progress = Callable[[str], None]
EZKL_VISIBILITY = {"public": "public", "private": "hashed"}
CALIBRATION_SAMPLES = 8


@dataclass(frozen=True)
class ZkSegment:
    name: str
    artifacts: str  # directory relative to the split output
    input_scale: int
    output_scale: int
    logrows: int
    manifest: Mapping[str, str]  # vk_sha256, settings_sha256, srs_sha256, compiled_sha256, srs_kind
    decomposition: tuple[int, int]  # (base, legs) in the compiled settings
    tuned: bool  # chosen by the tuner within ``tolerance`` of onnxruntime
    tolerance: float | None  # None when not tuned


def upstream_samples(
    policy: PipelinePolicy, segment_files: Mapping[str, Path], samples: Sequence[Mapping[str, np.ndarray]]
) -> dict[str, list[np.ndarray]]:
    """Every tensor's value on each sample, by running the segments in order."""
    sessions = {
        name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for name, path in segment_files.items()
    }
    seen: dict[str, list[np.ndarray]] = {}
    for feeds in samples:
        values = dict(feeds)
        for segment in policy.segments:
            outputs = sessions[segment.name].run(list(segment.outputs), {n: values[n] for n in segment.inputs})
            values.update(zip(segment.outputs, outputs, strict=True))
        for name, value in values.items():
            seen.setdefault(name, []).append(np.asarray(value, dtype=np.float32))
    return seen


def compile_zk_segments(
    policy: PipelinePolicy,
    segment_files: Mapping[str, Path],
    output: Path,
    samples: Sequence[Mapping[str, np.ndarray]],
    *,
    srs: Path | None,
    dev_srs: bool,
    decomposition: tuple[int, int] | None,
    progress: Progress,
    tune: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[ZkSegment]:
    zk_segments = [s for s in policy.segments if s.mode != MODE_TEE]
    if not zk_segments:
        return []
    values = upstream_samples(policy, segment_files, samples)
    compiled: list[ZkSegment] = []
    for segment in zk_segments:
        if len(segment.inputs) != 1 or len(segment.outputs) != 1:
            raise PipelineError(
                "PIPELINE_ZK_SHAPE", f"zk segment {segment.name!r} must have one input and one output tensor"
            )
        directory = output / "zk" / segment.name
        directory.mkdir(parents=True, exist_ok=True)
        calibration = directory.parent / f"{segment.name}.calibration.json"
        flat = [float(v) for sample in values[segment.inputs[0]] for v in sample.ravel()]
        calibration.write_text(json.dumps({"input_data": [flat]}))
        options = CircuitOptions(
            input_visibility=EZKL_VISIBILITY[policy.visibility[segment.inputs[0]]],
            output_visibility=EZKL_VISIBILITY[policy.visibility[segment.outputs[0]]],
        )
        if decomposition is not None:
            options = options.with_decomposition(*decomposition)
        tuning = tune and decomposition is None
        sides = f"input {options.input_visibility}, output {options.output_visibility}"
        how = f"tuning within {tolerance:g} of onnxruntime" if tuning else "fixed settings"
        progress(f"compiling zk segment {segment.name} ({sides}; {how})")
        artifacts = compile_model(
            segment_files[segment.name],
            calibration,
            directory,
            srs=srs,
            dev_srs=dev_srs,
            options=options,
            tune_settings=tuning,
            tolerance=tolerance,
        )
        settings = json.loads((directory / "settings.json").read_text())
        run_args = settings["run_args"]
        used = (int(run_args["decomp_base"]), int(run_args["decomp_legs"]))
        compiled.append(
            ZkSegment(
                name=segment.name,
                artifacts=str(directory.relative_to(output)),
                input_scale=artifacts.input_scale,
                output_scale=artifacts.output_scale,
                logrows=artifacts.logrows,
                manifest={
                    "vk_sha256": artifacts.sha256_of("vk"),
                    "settings_sha256": artifacts.sha256_of("settings"),
                    "srs_sha256": artifacts.sha256_of("srs"),
                    "compiled_sha256": artifacts.sha256_of("compiled_circuit"),
                    "srs_kind": artifacts.srs_kind,
                },
                decomposition=used,
                tuned=tuning,
                tolerance=tolerance if tuning else None,
            )
        )
    return compiled
