"""The reference model: about 1M parameters, deterministic, cut-able at 'embedding'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from trustdial.pipeline.reference_model import build_reference_model, sample_inputs


def test_parameter_count_is_the_sum_of_the_layer_shapes() -> None:
    # 784x1309+1309, 1309x32+32, 32x16+16, 16x2+2
    expected = 784 * 1309 + 1309 + 1309 * 32 + 32 + 32 * 16 + 16 + 16 * 2 + 2
    assert build_reference_model().parameter_count == expected == 1_070_047


def test_same_seed_gives_identical_bytes() -> None:
    assert build_reference_model(5).model.SerializeToString() == build_reference_model(5).model.SerializeToString()


def test_other_seed_gives_other_weights() -> None:
    assert build_reference_model(5).model.SerializeToString() != build_reference_model(6).model.SerializeToString()


def test_model_runs_and_matches_a_numpy_forward_pass() -> None:
    built = build_reference_model()
    weights = {
        t.name: np.frombuffer(t.raw_data, dtype=np.float32).reshape(t.dims) for t in built.model.graph.initializer
    }
    x = sample_inputs(1)[0]
    h = x
    for layer, relu in (("body_fc1", True), ("body_fc2", True), ("head_fc1", True), ("head_fc2", False)):
        h = h @ weights[f"{layer}.weight"] + weights[f"{layer}.bias"]
        h = np.maximum(h, 0) if relu else h
    session = ort.InferenceSession(built.model.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run(["decision"], {"input": x})
    assert out.shape == (1, 2)
    np.testing.assert_allclose(out, h, rtol=1e-4, atol=1e-4)


def test_embedding_tensor_is_a_named_value_in_the_graph() -> None:
    outputs = {name for node in build_reference_model().model.graph.node for name in node.output}
    assert "embedding" in outputs


def test_reference_command_into_an_unwritable_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trustdial.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert main(["pipeline", "reference", "--output", str(blocker / "ref")]) == 2
    assert "error [IO_ERROR]" in capsys.readouterr().err
