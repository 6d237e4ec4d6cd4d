"""The reference model of the hybrid demo: an MLP body (784→1309→32, ReLU) producing a compact
32-value embedding, feeding a small decision head (32→16→2); about 1.07 M parameters, weights
drawn from a fixed seed.

Why this shape: the head is the step proven in zero knowledge, and with a private boundary the
circuit Poseidon-hashes the whole embedding (about 41 circuit rows per value in ezkl 23), so the
embedding width sets the head's circuit size (32 values: 1 314 rows, logrows 11; 256 values:
10 498 rows, logrows 14). The body's hidden width (1309) keeps the parameter and multiply-
accumulate counts of the earlier 784→1024→256 body (1.07 M), so proving the whole model in zk
costs the same as before: the comparison with full zk is not flattered by a smaller model.

Built with ``onnx.helper`` and numpy only. The tensor between body and head is named
``embedding`` so a pipeline spec can cut the model there; the output is ``decision``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT_NAME = "input"
EMBEDDING_NAME = "embedding"
OUTPUT_NAME = "decision"
EMBEDDING_WIDTH = 32
OPSET = 17
DEFAULT_SEED = 20261126

# (name, fan_in, fan_out, relu_after)
LAYERS: tuple[tuple[str, int, int, bool], ...] = (
    ("body_fc1", 784, 1309, True),
    ("body_fc2", 1309, EMBEDDING_WIDTH, True),
    ("head_fc1", EMBEDDING_WIDTH, 16, True),
    ("head_fc2", 16, 2, False),
)


@dataclass(frozen=True)
class ReferenceModel:
    model: onnx.ModelProto
    parameter_count: int


def build_reference_model(seed: int = DEFAULT_SEED) -> ReferenceModel:
    """Return the reference model; the same seed always gives the same serialized bytes."""
    rng = np.random.default_rng(seed)
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    current = INPUT_NAME
    parameters = 0
    for index, (name, fan_in, fan_out, relu) in enumerate(LAYERS):
        # He-style scaling keeps activations in a range a fixed-point circuit handles well.
        weight = (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        bias = (rng.standard_normal(fan_out) * 0.01).astype(np.float32)
        initializers += [
            numpy_helper.from_array(weight, f"{name}.weight"),
            numpy_helper.from_array(bias, f"{name}.bias"),
        ]
        parameters += weight.size + bias.size
        is_last_body = name == "body_fc2"
        is_last = index == len(LAYERS) - 1
        gemm_out = OUTPUT_NAME if is_last else f"{name}.gemm"
        nodes.append(helper.make_node("Gemm", [current, f"{name}.weight", f"{name}.bias"], [gemm_out], name=name))
        current = gemm_out
        if relu:
            relu_out = EMBEDDING_NAME if is_last_body else f"{name}.relu"
            nodes.append(helper.make_node("Relu", [current], [relu_out], name=f"{name}_relu"))
            current = relu_out
    graph = helper.make_graph(
        nodes,
        "trustdial_reference",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, LAYERS[0][1]])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [1, LAYERS[-1][2]])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="trustdial")
    model.ir_version = 8
    onnx.checker.check_model(model)
    model = onnx.shape_inference.infer_shapes(model)
    return ReferenceModel(model=model, parameter_count=parameters)


def write_reference_model(path: Path, seed: int = DEFAULT_SEED) -> ReferenceModel:
    built = build_reference_model(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(built.model.SerializeToString())
    return built


def sample_inputs(count: int, seed: int = 7) -> np.ndarray:
    """Inputs in [0, 1), shaped like a flattened 28x28 image batch of one, stacked ``count`` times."""
    rng = np.random.default_rng(seed)
    return rng.random((count, 1, LAYERS[0][1]), dtype=np.float32)
