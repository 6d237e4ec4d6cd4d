"""Compile and prove one ``zk`` segment with ezkl, with boundary visibility taken from the
pipeline policy (private -> ezkl ``hashed``, public -> ``public``) and calibration on the real
tensors that reach the segment (outputs of the upstream segments), not random data.

Interim: once the prover area's ``trustdial zk compile``/``prove`` API is on main, this module
delegates to it and keeps only the pipeline-specific parts (visibility mapping, calibration
from upstream tensors, reading scales and instance positions).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ezkl
import numpy as np

from trustdial.pipeline.errors import PipelineError

Progress = Callable[[str], None]
VISIBILITY_TO_EZKL = {"public": "public", "private": "hashed"}


@dataclass(frozen=True)
class ZkSegmentArtifacts:
    directory: Path
    input_visibility: str  # pipeline visibility: public | private
    output_visibility: str
    input_scale: int
    output_scale: int
    logrows: int

    @property
    def model(self) -> Path:
        return self.directory / "segment.onnx"

    @property
    def settings(self) -> Path:
        return self.directory / "settings.json"

    @property
    def compiled(self) -> Path:
        return self.directory / "segment.compiled"

    @property
    def vk(self) -> Path:
        return self.directory / "vk.key"

    @property
    def pk(self) -> Path:
        return self.directory / "pk.key"

    @property
    def srs(self) -> Path:
        return self.directory / "kzg.srs"

    def hashes(self) -> dict[str, str]:
        return {
            name: hashlib.sha256(path.read_bytes()).hexdigest()
            for name, path in (
                ("model_sha256", self.model),
                ("settings_sha256", self.settings),
                ("compiled_sha256", self.compiled),
                ("vk_sha256", self.vk),
                ("srs_sha256", self.srs),
            )
        }


def compile_segment(
    onnx_bytes: bytes,
    calibration: Sequence[np.ndarray],
    directory: Path,
    *,
    input_visibility: str,
    output_visibility: str,
    scales: Sequence[int] | None = (13,),
    progress: Progress = lambda _line: None,
) -> ZkSegmentArtifacts:
    """Compile, calibrate and set up keys. ``scales`` bounds the calibration search (ezkl picks 13
    for these MLPs when searching freely; None searches ezkl's full default range)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "segment.onnx").write_bytes(onnx_bytes)
    run_args = ezkl.PyRunArgs()
    run_args.input_visibility = VISIBILITY_TO_EZKL[input_visibility]
    run_args.output_visibility = VISIBILITY_TO_EZKL[output_visibility]
    run_args.param_visibility = "fixed"
    model, settings = directory / "segment.onnx", directory / "settings.json"
    calibration_path = directory / "calibration.json"
    flat = [float(v) for sample in calibration for v in np.asarray(sample, dtype=np.float32).ravel()]
    calibration_path.write_text(json.dumps({"input_data": [flat]}))
    progress("ezkl gen_settings + calibrate_settings (target resources)")
    ezkl.gen_settings(str(model), str(settings), py_run_args=run_args)
    ezkl.calibrate_settings(
        str(calibration_path), str(model), str(settings), "resources", scales=None if scales is None else list(scales)
    )
    compiled = directory / "segment.compiled"
    ezkl.compile_circuit(str(model), str(compiled), str(settings))
    document = json.loads(settings.read_text())
    logrows = int(document["run_args"]["logrows"])
    progress(f"ezkl gen_srs (development SRS, insecure, k={logrows}) + setup")
    ezkl.gen_srs(str(directory / "kzg.srs"), logrows)
    ezkl.setup(str(compiled), str(directory / "vk.key"), str(directory / "pk.key"), srs_path=str(directory / "kzg.srs"))
    return ZkSegmentArtifacts(
        directory=directory,
        input_visibility=input_visibility,
        output_visibility=output_visibility,
        input_scale=int(document["model_input_scales"][0]),
        output_scale=int(document["model_output_scales"][0]),
        logrows=logrows,
    )


def prove_segment(artifacts: ZkSegmentArtifacts, values: np.ndarray, workdir: Path) -> dict[str, Any]:
    """Prove the segment on ``values``; return the proof JSON object (verified before returning)."""
    workdir.mkdir(parents=True, exist_ok=True)
    data, witness, proof = workdir / "input.json", workdir / "witness.json", workdir / "proof.json"
    data.write_text(json.dumps({"input_data": [[float(v) for v in np.asarray(values, dtype=np.float32).ravel()]]}))
    ezkl.gen_witness(str(data), str(artifacts.compiled), str(witness))
    ezkl.prove(str(witness), str(artifacts.compiled), str(artifacts.pk), str(proof), srs_path=str(artifacts.srs))
    try:
        ezkl.verify(str(proof), str(artifacts.settings), str(artifacts.vk), srs_path=str(artifacts.srs))
    except RuntimeError as err:
        raise PipelineError("PIPELINE_PROOF_INVALID", f"ezkl produced a proof that does not verify: {err}") from err
    result: dict[str, Any] = json.loads(proof.read_text())
    return result


def proof_outputs(artifacts: ZkSegmentArtifacts, proof: dict[str, Any], input_size: int) -> list[float]:
    """The segment's public outputs read from the proof instances (public output visibility)."""
    instances = proof["instances"][0]
    offset = 1 if artifacts.input_visibility == "private" else input_size
    return [ezkl.felt_to_float(f, artifacts.output_scale) for f in instances[offset:]]
