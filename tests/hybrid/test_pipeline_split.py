"""`trustdial pipeline split`: segment extraction and the composition check."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from trustdial.pipeline.errors import PipelineError
from trustdial.pipeline.reference_model import write_reference_model
from trustdial.pipeline.reference_pipeline import reference_pipeline_toml, write_reference_pipeline
from trustdial.pipeline.spec import load_spec
from trustdial.pipeline.split import check_composition, split_pipeline

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_reference_pipeline(tmp_path_factory.mktemp("reference"))


def test_split_writes_one_model_per_segment_with_its_sha256(reference: Path, tmp_path: Path) -> None:
    result = split_pipeline(load_spec(reference), tmp_path)
    for segment in result.segments:
        data = (tmp_path / segment.file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == segment.sha256
    assert [s.name for s in result.segments] == ["body", "head"]


def test_body_segment_maps_input_to_embedding_only(reference: Path, tmp_path: Path) -> None:
    result = split_pipeline(load_spec(reference), tmp_path)
    session = ort.InferenceSession(str(tmp_path / result.segments[0].file), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["embedding"]
    assert session.get_outputs()[0].shape == [1, 256]


def test_segments_composed_equal_the_full_model(reference: Path, tmp_path: Path) -> None:
    result = split_pipeline(load_spec(reference), tmp_path)
    full = ort.InferenceSession(str(reference.parent / "reference.onnx"), providers=["CPUExecutionProvider"])
    body = ort.InferenceSession(str(tmp_path / result.segments[0].file), providers=["CPUExecutionProvider"])
    head = ort.InferenceSession(str(tmp_path / result.segments[1].file), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).random((1, 784), dtype=np.float32)
    (embedding,) = body.run(None, {"input": x})
    np.testing.assert_array_equal(head.run(None, {"embedding": embedding})[0], full.run(None, {"input": x})[0])
    assert result.composition.max_abs_error == 0.0


def test_composition_check_rejects_a_segment_from_another_model(reference: Path, tmp_path: Path) -> None:
    spec = load_spec(reference)
    result = split_pipeline(spec, tmp_path / "good")
    other_dir = tmp_path / "other"
    write_reference_model(other_dir / "reference.onnx", seed=99)
    (other_dir / "pipeline.toml").write_text(reference_pipeline_toml("private"))
    other = split_pipeline(load_spec(other_dir / "pipeline.toml"), other_dir / "split")
    (tmp_path / "good" / result.segments[1].file).write_bytes(
        (other_dir / "split" / other.segments[1].file).read_bytes()
    )
    with pytest.raises(PipelineError) as caught:
        check_composition(spec, tmp_path / "good", result.segments, samples=2, atol=1e-5, rtol=1e-4)
    assert caught.value.code == "PIPELINE_COMPOSITION_MISMATCH"


def test_cut_at_a_tensor_the_model_lacks_is_refused(reference: Path, tmp_path: Path) -> None:
    text = (
        reference_pipeline_toml("private")
        .replace('"embedding"', '"no_such_tensor"')
        .replace("embedding =", "no_such_tensor =")
    )
    (reference.parent / "bad.toml").write_text(text)
    with pytest.raises(PipelineError) as caught:
        split_pipeline(load_spec(reference.parent / "bad.toml"), tmp_path)
    assert caught.value.code == "PIPELINE_TENSOR_UNKNOWN"


def test_pipeline_input_that_is_not_a_model_input_is_refused(reference: Path, tmp_path: Path) -> None:
    text = reference_pipeline_toml("private").replace('inputs = ["input"]', 'inputs = ["body_fc1.relu"]')
    text = text.replace('input = "private"', '"body_fc1.relu" = "private"')
    (reference.parent / "cut.toml").write_text(text)
    with pytest.raises(PipelineError) as caught:
        split_pipeline(load_spec(reference.parent / "cut.toml"), tmp_path)
    assert caught.value.code == "PIPELINE_CUT_INVALID"


def test_cli_split_json_reports_segments_and_policy_hash(reference: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            str(BIN / "trustdial"),
            "pipeline",
            "split",
            str(reference),
            "--output",
            str(tmp_path),
            "--json",
            "--samples",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["policy_sha256"] == load_spec(reference).policy_sha256
    assert json.loads((tmp_path / "split.json").read_text()) == report
    assert "extracting segment body" in done.stderr


def test_cli_split_of_a_missing_model_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "pipeline.toml").write_text(reference_pipeline_toml("private"))
    done = subprocess.run(
        [
            str(BIN / "trustdial"),
            "pipeline",
            "split",
            str(tmp_path / "pipeline.toml"),
            "--output",
            str(tmp_path / "o"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert json.loads(done.stdout)["code"] == "PIPELINE_MODEL_UNREADABLE"


def test_split_writes_manifest_fragments_for_measurements_create(reference: Path, tmp_path: Path) -> None:
    result = split_pipeline(load_spec(reference), tmp_path, samples=1)
    models = json.loads((tmp_path / "manifest-models.json").read_text())
    assert models == {s.name: {"sha256": s.sha256} for s in result.segments}
    assert json.loads((tmp_path / "manifest-zk.json").read_text()) == {}


@pytest.mark.slow
def test_cli_split_refuses_to_compile_a_zk_segment_no_tuned_setting_keeps_within_tolerance(tmp_path: Path) -> None:
    # Quantization at scale 13 costs ~7e-4 on the reference head for every decomposition, so a
    # 1e-9 tolerance leaves the tuner no candidate: the split must fail closed and key nothing.
    pipeline = write_reference_pipeline(tmp_path / "ref", "public")
    out = tmp_path / "split"
    command = [
        str(BIN / "trustdial"), "pipeline", "split", str(pipeline), "--output", str(out), "--samples", "1",
        "--compile-zk", "--dev-srs", "--tolerance", "1e-9", "--json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr[-2000:]
    assert json.loads(done.stdout)["code"] == "TUNE_NO_CANDIDATE"
    assert not (out / "zk" / "head" / "vk.key").exists()
    assert not (out / "split.json").exists()
