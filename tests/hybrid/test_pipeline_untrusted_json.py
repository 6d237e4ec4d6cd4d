"""JSON that reaches the hybrid pipeline from outside it (a proof the prover fleet put in S3, an input file) goes
through the verifier's strict reader: a duplicate key, an integer past Python's int-string limit or a lone surrogate
is a typed ``PipelineError`` carrying the reader's code, never a ``ValueError`` or a silently chosen value."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from prover.jobs import ProofJob
from trustdial.pipeline.errors import PipelineError
from trustdial.pipeline.queue_prover import QueueConfig, QueueProver
from trustdial.pipeline.run import read_input

JOB = ProofJob("j1", "zk/head/", "in/j1.json", "out/j1.json")
HOSTILE = [
    (b'{"proof": [1, 2], "proof": [3]}', "JSON_DUPLICATE_KEY"),
    (b'{"proof": [' + b"9" * 5000 + b"]}", "JSON_INTEGER_TOO_LARGE"),
    (b'{"proof": [1], "note": "\\udfff"}', "JSON_LONE_SURROGATE"),
    (b'{"proof": [1], "cost": 1e400}', "JSON_NON_FINITE"),
]
IDS = ["duplicate-key", "huge-integer", "lone-surrogate", "overflow-to-infinity"]


@pytest.fixture
def queue_prover() -> QueueProver:
    # boto3 clients are made but never called: _parse only reads the downloaded bytes
    return QueueProver(QueueConfig(queue_url="http://127.0.0.1:9/q", bucket="b", endpoint_url="http://127.0.0.1:9"))


def test_a_genuine_proof_document_is_returned(queue_prover: QueueProver) -> None:
    assert queue_prover._parse("head", JOB, b'{"proof": [1, 2, 3], "instances": []}') == {
        "proof": [1, 2, 3],
        "instances": [],
    }


@pytest.mark.parametrize(("data", "reader_code"), HOSTILE, ids=IDS)
def test_a_proof_the_strict_reader_refuses_is_pipeline_proof_malformed(
    queue_prover: QueueProver, data: bytes, reader_code: str
) -> None:
    with pytest.raises(PipelineError) as err:
        queue_prover._parse("head", JOB, data)
    assert err.value.code == "PIPELINE_PROOF_MALFORMED"
    assert reader_code in str(err.value)


def _input(x: bytes) -> dict[str, object]:
    return {"x": {"dtype": "float32", "shape": [1, 4], "data": base64.b64encode(x).decode()}}


def test_a_genuine_input_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(_input(bytes(16))))
    assert read_input(path)["x"].shape == (1, 4)


@pytest.mark.parametrize(
    "text",
    [
        # the same tensor twice: which one is proved would depend on the parser
        '{"x": {"dtype": "float32", "shape": [1, 4], "data": "AAAAAAAAAAAAAAAAAAAAAA==", "shape": [4]}}',
        '{"x": {"dtype": "float32", "shape": [1, ' + "9" * 5000 + '], "data": ""}}',
        '{"\\ud800": {"dtype": "float32", "shape": [1, 4], "data": "AAAAAAAAAAAAAAAAAAAAAA=="}}',
    ],
    ids=["duplicate-key", "huge-integer", "lone-surrogate"],
)
def test_an_input_file_the_strict_reader_refuses_is_pipeline_input_invalid(tmp_path: Path, text: str) -> None:
    path = tmp_path / "input.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PipelineError) as err:
        read_input(path)
    assert err.value.code == "PIPELINE_INPUT_INVALID"
    assert "JSON_" in str(err.value)
