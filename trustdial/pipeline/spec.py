"""Load a pipeline.toml for the operator: the verifier's policy plus the model file it names."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from trustdial_verifier.unstable.composite import PipelinePolicy, load_policy, policy_sha256

from trustdial.pipeline.errors import PipelineError


@dataclass(frozen=True)
class PipelineSpec:
    path: Path
    policy: PipelinePolicy
    policy_sha256: str
    model_path: Path
    model_sha256: str


def load_spec(path: Path) -> PipelineSpec:
    policy = load_policy(path)
    if not policy.model:
        raise PipelineError("PIPELINE_MODEL_MISSING", f"expected 'model = \"FILE.onnx\"' in {path}, found none")
    model_path = (path.parent / policy.model).resolve()
    try:
        model_bytes = model_path.read_bytes()
    except OSError as err:
        raise PipelineError("PIPELINE_MODEL_UNREADABLE", f"cannot read model {model_path}: {err}") from err
    return PipelineSpec(
        path=path,
        policy=policy,
        policy_sha256=policy_sha256(policy),
        model_path=model_path,
        model_sha256=hashlib.sha256(model_bytes).hexdigest(),
    )
