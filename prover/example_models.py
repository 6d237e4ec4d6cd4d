"""Small dense ONNX models built with onnx.helper + numpy (no torch), for tests, benches and demos."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build_mlp(sizes: list[int], *, seed: int = 0) -> onnx.ModelProto:
    """MatMul+Add layers of the given widths with ReLU between them; input [1, sizes[0]]."""
    rng = np.random.default_rng(seed)
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    previous = "input"
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        weight = rng.normal(0.0, 1.0 / np.sqrt(fan_in), (fan_in, fan_out)).astype(np.float32)
        bias = rng.normal(0.0, 0.1, (fan_out,)).astype(np.float32)
        initializers += [numpy_helper.from_array(weight, f"W{index}"), numpy_helper.from_array(bias, f"B{index}")]
        nodes.append(helper.make_node("MatMul", [previous, f"W{index}"], [f"matmul{index}"]))
        nodes.append(helper.make_node("Add", [f"matmul{index}", f"B{index}"], [f"dense{index}"]))
        previous = f"dense{index}"
        if index < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [previous], [f"relu{index}"]))
            previous = f"relu{index}"
    nodes.append(helper.make_node("Identity", [previous], ["output"]))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, sizes[0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, sizes[-1]])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def parameter_count(model: onnx.ModelProto) -> int:
    return sum(int(np.prod(init.dims)) for init in model.graph.initializer)


def save_mlp(path: Path, sizes: list[int], *, seed: int = 0) -> Path:
    onnx.save(build_mlp(sizes, seed=seed), str(path))
    return path
