"""Small ONNX models built with ``onnx.helper`` for tests, benchmarks and demos (no downloads):
an MLP (the 784->1024->256->10 reference has about 1.07 M parameters), a small CNN, and a tiny
decoder-only transformer LM (``input_ids`` [1, T] int64 -> ``logits`` [1, T, vocab])."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _model(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="trustdial")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array, name)


def build_mlp(dims: Sequence[int] = (784, 1024, 256, 10), *, seed: int = 0) -> bytes:
    """Gemm+Relu layers, input ``x`` [1, dims[0]] float32, output ``y`` [1, dims[-1]]."""
    rng = np.random.default_rng(seed)
    nodes, inits, previous = [], [], "x"
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(dims)):
        weight = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        bias = (rng.standard_normal(fan_out) * 0.01).astype(np.float32)
        inits += [_init(f"W{i}", weight), _init(f"B{i}", bias)]
        last = i == len(dims) - 2
        out = "y" if last else f"h{i}"
        nodes.append(helper.make_node("Gemm", [previous, f"W{i}", f"B{i}"], [out]))
        previous = out
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"]))
            previous = f"r{i}"
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, dims[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, dims[-1]])],
        inits,
    )
    return _model(graph)


def build_cnn(*, seed: int = 0) -> bytes:
    """Conv(8)-Relu-MaxPool-Conv(16)-Relu-MaxPool-Flatten-Gemm(10) on ``x`` [1, 1, 28, 28]."""
    rng = np.random.default_rng(seed)
    inits = [
        _init("C1", (rng.standard_normal((8, 1, 3, 3)) / 3).astype(np.float32)),
        _init("c1", np.zeros(8, np.float32)),
        _init("C2", (rng.standard_normal((16, 8, 3, 3)) / 8).astype(np.float32)),
        _init("c2", np.zeros(16, np.float32)),
        _init("W", (rng.standard_normal((16 * 7 * 7, 10)) / 28).astype(np.float32)),
        _init("B", np.zeros(10, np.float32)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "C1", "c1"], ["a1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "C2", "c2"], ["a2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["f"]),
        helper.make_node("Gemm", ["f", "W", "B"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    return _model(graph)


@dataclass(frozen=True)
class TinyLmWeights:
    embed: np.ndarray  # [V, D]
    position: np.ndarray  # [max_len, D]
    wq: np.ndarray
    wk: np.ndarray
    wv: np.ndarray
    wo: np.ndarray
    w1: np.ndarray  # [D, 4D]
    w2: np.ndarray  # [4D, D]
    unembed: np.ndarray  # [D, V]


def tiny_lm_weights(vocab: int = 32, dim: int = 16, max_len: int = 64, *, seed: int = 0) -> TinyLmWeights:
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        weights: np.ndarray = (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)
        return weights

    return TinyLmWeights(
        embed=w(vocab, dim),
        position=w(max_len, dim),
        wq=w(dim, dim),
        wk=w(dim, dim),
        wv=w(dim, dim),
        wo=w(dim, dim),
        w1=w(dim, 4 * dim),
        w2=w(4 * dim, dim),
        unembed=w(dim, vocab) * 4,
    )


def build_tiny_lm(weights: TinyLmWeights) -> bytes:
    """One causal self-attention block (single head) and a ReLU MLP, both residual."""
    dim = weights.wq.shape[0]
    inits = [
        _init(name, getattr(weights, name))
        for name in ("embed", "position", "wq", "wk", "wv", "wo", "w1", "w2", "unembed")
    ]
    inits += [
        _init("scale", np.array(1.0 / np.sqrt(dim), np.float32)),
        _init("neg", np.array(-1e9, np.float32)),
        _init("one", np.array(1.0, np.float32)),
        _init("zero_i", np.array(0, np.int64)),
        _init("one_i", np.array(1, np.int64)),
        _init("idx1", np.array([1], np.int64)),
    ]
    n = helper.make_node
    nodes = [
        n("Gather", ["embed", "input_ids"], ["tok"]),  # [1, T, D]
        n("Shape", ["input_ids"], ["ids_shape"]),
        n("Gather", ["ids_shape", "idx1"], ["t1"]),  # [1]
        n("Squeeze", ["t1"], ["t"]),  # scalar T
        n("Range", ["zero_i", "t", "one_i"], ["positions"]),
        n("Gather", ["position", "positions"], ["pos"]),  # [T, D]
        n("Add", ["tok", "pos"], ["x"]),
        n("MatMul", ["x", "wq"], ["q"]),
        n("MatMul", ["x", "wk"], ["k"]),
        n("MatMul", ["x", "wv"], ["v"]),
        n("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        n("MatMul", ["q", "kt"], ["s0"]),
        n("Mul", ["s0", "scale"], ["s1"]),
        n("Concat", ["t1", "t1"], ["tt"], axis=0),
        n("ConstantOfShape", ["tt"], ["ones"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
        n("Trilu", ["ones"], ["lower"], upper=0),
        n("Sub", ["one", "lower"], ["upper"]),
        n("Mul", ["upper", "neg"], ["mask"]),
        n("Add", ["s1", "mask"], ["s2"]),
        n("Softmax", ["s2"], ["attn"], axis=-1),
        n("MatMul", ["attn", "v"], ["ctx"]),
        n("MatMul", ["ctx", "wo"], ["o"]),
        n("Add", ["x", "o"], ["x2"]),
        n("MatMul", ["x2", "w1"], ["m1"]),
        n("Relu", ["m1"], ["m2"]),
        n("MatMul", ["m2", "w2"], ["m3"]),
        n("Add", ["x2", "m3"], ["x3"]),
        n("MatMul", ["x3", "unembed"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_lm",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "T"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, "T", weights.embed.shape[0]])],
        inits,
    )
    return _model(graph)
