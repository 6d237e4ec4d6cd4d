"""Cut a model into the segments a pipeline policy names, and check the cut.

Each segment becomes its own ONNX file (``onnx.utils.Extractor`` between the segment's input
and output tensors). The composition check then runs the full model and the chain of
segments with onnxruntime on sample inputs and refuses the split unless every pipeline output
agrees within tolerance.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort
from google.protobuf.message import DecodeError
from trustdial_verifier.unstable.composite import PipelinePolicy

from prover.compile import DEFAULT_TOLERANCE
from trustdial.pipeline.errors import PipelineError
from trustdial.pipeline.spec import PipelineSpec
from trustdial.pipeline.zk_compile import CALIBRATION_SAMPLES, ZkSegment, compile_zk_segments

SPLIT_FORMAT = "trustdial.pipeline-split/1"
DEFAULT_SAMPLES = 8
DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SegmentFile:
    name: str
    mode: str
    file: str
    sha256: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class CompositionCheck:
    samples: int
    max_abs_error: float
    atol: float
    rtol: float


@dataclass(frozen=True)
class SplitResult:
    policy_sha256: str
    model_sha256: str
    segments: tuple[SegmentFile, ...]
    composition: CompositionCheck
    zk: tuple[ZkSegment, ...] = ()

    def manifest_entries(self) -> dict[str, object]:
        """What the measurement manifest must pin for this pipeline (docs/measurements.md fields)."""
        return {
            "models": {s.name: {"sha256": s.sha256} for s in self.segments},
            "zk": {z.name: dict(z.manifest) for z in self.zk},
            "pipeline_policy_sha256": self.policy_sha256,
        }

    def to_json(self) -> dict[str, object]:
        return {"format": SPLIT_FORMAT, **asdict(self), "manifest_entries": self.manifest_entries()}


@dataclass(frozen=True)
class ZkOptions:
    """Compile the zk segments too (needs an SRS: a ceremony file, or an insecure dev one).

    By default the prover's tuner picks the cheapest decomposition that keeps the segment's
    outputs within ``tolerance`` of onnxruntime on the calibration samples."""

    srs: Path | None = None
    dev_srs: bool = False
    decomposition: tuple[int, int] | None = None  # fixed decomposition: skips the tuner
    tune: bool = True
    tolerance: float = DEFAULT_TOLERANCE  # max abs error of the tuned circuit vs onnxruntime


def split_pipeline(
    spec: PipelineSpec,
    output: Path,
    *,
    samples: int = DEFAULT_SAMPLES,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    zk: ZkOptions | None = None,
    progress: Progress = lambda _line: None,
) -> SplitResult:
    model = _load_model(spec.model_path)
    _check_cut_points(model, spec.policy)
    segment_dir = output / "segments"
    segment_dir.mkdir(parents=True, exist_ok=True)
    files: list[SegmentFile] = []
    for segment in spec.policy.segments:
        progress(f"extracting segment {segment.name} ({', '.join(segment.inputs)} -> {', '.join(segment.outputs)})")
        try:
            part = onnx.utils.Extractor(model).extract_model(list(segment.inputs), list(segment.outputs))
        except (KeyError, ValueError, onnx.checker.ValidationError) as err:
            raise PipelineError("PIPELINE_EXTRACT_FAILED", f"segment {segment.name!r}: {err}") from err
        data = part.SerializeToString()
        path = segment_dir / f"{segment.name}.onnx"
        path.write_bytes(data)
        files.append(
            SegmentFile(
                name=segment.name,
                mode=segment.mode,
                file=str(path.relative_to(output)),
                sha256=hashlib.sha256(data).hexdigest(),
                inputs=segment.inputs,
                outputs=segment.outputs,
            )
        )
    progress(f"checking composition on {samples} sample inputs")
    composition = check_composition(spec, output, files, samples=samples, atol=atol, rtol=rtol)
    compiled: list[ZkSegment] = []
    if zk is not None:
        full = _session(spec.model_path)
        rng = np.random.default_rng(1)
        feeds = [_random_feeds(full, rng) for _ in range(CALIBRATION_SAMPLES)]
        compiled = compile_zk_segments(
            spec.policy,
            {f.name: output / f.file for f in files},
            output,
            feeds,
            srs=zk.srs,
            dev_srs=zk.dev_srs,
            decomposition=zk.decomposition,
            progress=progress,
            tune=zk.tune,
            tolerance=zk.tolerance,
        )
    result = SplitResult(
        policy_sha256=spec.policy_sha256,
        model_sha256=spec.model_sha256,
        segments=tuple(files),
        composition=composition,
        zk=tuple(compiled),
    )
    (output / "split.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    entries = result.manifest_entries()
    # For `trustdial measurements create --models ... --zk ... --pipeline-policy-sha256 ...`.
    (output / "manifest-models.json").write_text(json.dumps(entries["models"], indent=2) + "\n")
    (output / "manifest-zk.json").write_text(json.dumps(entries["zk"], indent=2) + "\n")
    return result


def check_composition(
    spec: PipelineSpec,
    output: Path,
    files: tuple[SegmentFile, ...] | list[SegmentFile],
    *,
    samples: int,
    atol: float,
    rtol: float,
) -> CompositionCheck:
    full = _session(spec.model_path)
    sessions = {f.name: _session(output / f.file) for f in files}
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(samples):
        feeds = _random_feeds(full, rng)
        expected = dict(zip([o.name for o in full.get_outputs()], full.run(None, feeds), strict=True))
        values: dict[str, np.ndarray] = dict(feeds)
        for f in files:
            session = sessions[f.name]
            outputs = session.run(list(f.outputs), {name: values[name] for name in f.inputs})
            values.update(zip(f.outputs, outputs, strict=True))
        for name in spec.policy.pipeline_outputs:
            got, want = values[name], expected[name]
            if got.shape != want.shape or not np.allclose(got, want, atol=atol, rtol=rtol):
                raise PipelineError(
                    "PIPELINE_COMPOSITION_MISMATCH",
                    f"output {name!r}: the segments composed give {got.ravel()[:4]}..., "
                    f"the full model {want.ravel()[:4]}... (atol {atol}, rtol {rtol})",
                )
            worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))))
    return CompositionCheck(samples=samples, max_abs_error=worst, atol=atol, rtol=rtol)


def _load_model(path: Path) -> onnx.ModelProto:
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except (OSError, DecodeError, onnx.checker.ValidationError) as err:
        raise PipelineError("PIPELINE_MODEL_INVALID", f"{path} is not a valid ONNX model: {err}") from err
    return onnx.shape_inference.infer_shapes(model)


def _check_cut_points(model: onnx.ModelProto, policy: PipelinePolicy) -> None:
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    graph_inputs = {i.name for i in graph.input if i.name not in initializers}
    graph_outputs = {o.name for o in graph.output}
    produced = {name for node in graph.node for name in node.output}
    for tensor in policy.pipeline_inputs:
        if tensor not in graph_inputs:
            raise PipelineError(
                "PIPELINE_CUT_INVALID",
                f"pipeline input {tensor!r} must be a model input; the model's inputs are {sorted(graph_inputs)}",
            )
    for tensor in policy.pipeline_outputs:
        if tensor not in graph_outputs:
            raise PipelineError(
                "PIPELINE_CUT_INVALID",
                f"pipeline output {tensor!r} must be a model output; the model's outputs are {sorted(graph_outputs)}",
            )
    for segment in policy.segments:
        for tensor in (*segment.inputs, *segment.outputs):
            if tensor not in produced and tensor not in graph_inputs:
                raise PipelineError(
                    "PIPELINE_TENSOR_UNKNOWN", f"segment {segment.name!r} names tensor {tensor!r}, the model has none"
                )


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _random_feeds(session: ort.InferenceSession, rng: np.random.Generator) -> Mapping[str, np.ndarray]:
    feeds: dict[str, np.ndarray] = {}
    for value in session.get_inputs():
        if value.type != "tensor(float)":
            raise PipelineError(
                "PIPELINE_INPUT_TYPE", f"sample inputs are generated for float tensors, not {value.type}"
            )
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in value.shape]
        feeds[value.name] = rng.random(shape, dtype=np.float32)
    return feeds
