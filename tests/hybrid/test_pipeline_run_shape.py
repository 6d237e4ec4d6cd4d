"""`trustdial pipeline run` refuses, before running anything, a segment with more than one input or
output tensor: composite receipts version 1 commit each step to one of each (the verifier's
COMPOSITE_STEP_TENSORS), so such a run could only write a receipt nobody accepts."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trustdial.cli import main

POLICY = """format = "trustdial.pipeline/1"
name = "two-inputs"
model = "m.onnx"

[[segments]]
name = "body"
inputs = ["a", "b"]
outputs = ["c"]
mode = "tee"
reason = "adds its two inputs"

[[segments]]
name = "head"
inputs = ["c"]
outputs = ["d"]
mode = "tee"
reason = "projects the sum"

[tensors]
a = "private"
b = "private"
c = "public"
d = "public"
"""


def _tensor(value: float) -> dict[str, object]:
    data = np.full((1, 4), value, dtype="<f4").tobytes()
    return {"dtype": "float32", "shape": [1, 4], "data": base64.b64encode(data).decode()}


def test_run_refuses_a_segment_with_two_inputs_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = numpy_helper.from_array(np.random.default_rng(0).random((4, 2)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"]), helper.make_node("MatMul", ["c", "W"], ["d"])],
        "two-inputs",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in ("a", "b")],
        [helper.make_tensor_value_info("d", TensorProto.FLOAT, [1, 2])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "m.onnx")
    policy = tmp_path / "pipeline.toml"
    policy.write_text(POLICY)
    (tmp_path / "x.json").write_text(json.dumps({"a": _tensor(0.1), "b": _tensor(0.2)}))
    split, pub, receipt = tmp_path / "split", tmp_path / "pub", tmp_path / "receipt.json"
    assert main(["pipeline", "split", str(policy), "--output", str(split)]) == 0
    assert main(["pipeline", "publish-dev", str(policy), "--split", str(split), "--output", str(pub)]) == 0
    capsys.readouterr()
    status = main(
        [
            "pipeline", "run", str(policy), "--split", str(split), "--input", str(tmp_path / "x.json"), "--local",
            "--measurements", str(pub / "manifest.cose"), "--output", str(receipt), "--json",
        ]
    )  # fmt: skip
    assert status == 2
    out = json.loads(capsys.readouterr().out)
    assert out["code"] == "PIPELINE_STEP_SHAPE" and "body" in out["reason"]
    assert not receipt.exists()
