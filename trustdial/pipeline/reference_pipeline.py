"""The reference pipeline of the demo: the reference model's body in the enclave, its decision
head proven in zero knowledge, cut at the ``embedding`` tensor."""

from __future__ import annotations

from pathlib import Path

from trustdial_verifier.unstable.composite import POLICY_FORMAT

from trustdial.pipeline.reference_model import EMBEDDING_NAME, INPUT_NAME, OUTPUT_NAME, write_reference_model

MODEL_FILE = "reference.onnx"
PIPELINE_FILE = "pipeline.toml"


def reference_pipeline_toml(boundary_visibility: str, model_file: str = MODEL_FILE) -> str:
    return f"""# trustdial reference pipeline (schema: docs/pipeline.md)
format = "{POLICY_FORMAT}"
name = "reference-decision"
model = "{model_file}"

[[segments]]
name = "body"
inputs = ["{INPUT_NAME}"]
outputs = ["{EMBEDDING_NAME}"]
mode = "tee"
reason = "1M-parameter feature extractor: attested enclave execution, microseconds per request"

[[segments]]
name = "head"
inputs = ["{EMBEDDING_NAME}"]
outputs = ["{OUTPUT_NAME}"]
mode = "zk"
reason = "the decision that moves money: proven in zero knowledge, checkable without trusting hardware"

[tensors]
{INPUT_NAME} = "private"
{EMBEDDING_NAME} = "{boundary_visibility}"
{OUTPUT_NAME} = "public"
"""


def write_reference_pipeline(directory: Path, boundary_visibility: str = "private") -> Path:
    """Write reference.onnx and pipeline.toml into ``directory``; return the pipeline.toml path."""
    directory.mkdir(parents=True, exist_ok=True)
    write_reference_model(directory / MODEL_FILE)
    path = directory / PIPELINE_FILE
    path.write_text(reference_pipeline_toml(boundary_visibility))
    return path
