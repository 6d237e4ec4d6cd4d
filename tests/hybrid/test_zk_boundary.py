"""Real ezkl proofs of the reference head: the boundary commitment a TEE step would sign is
exactly what the proof exposes — Poseidon for private boundaries, felts for public ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from trustdial.pipeline.boundary import poseidon_commitment, tensor_felts
from trustdial.pipeline.reference_model import sample_inputs
from trustdial.pipeline.reference_pipeline import write_reference_pipeline
from trustdial.pipeline.spec import load_spec
from trustdial.pipeline.split import split_pipeline
from trustdial.pipeline.zk_segment import ZkSegmentArtifacts, compile_segment, proof_outputs, prove_segment

pytestmark = pytest.mark.slow
Head = tuple[ZkSegmentArtifacts, dict[str, object]]


@pytest.fixture(scope="module")
def segments(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("split")
    result = split_pipeline(load_spec(write_reference_pipeline(root / "ref")), root / "split", samples=1)
    return {s.name: root / "split" / s.file for s in result.segments}


@pytest.fixture(scope="module")
def embeddings(segments: dict[str, Path]) -> list[np.ndarray]:
    body = ort.InferenceSession(str(segments["body"]), providers=["CPUExecutionProvider"])
    return [body.run(None, {"input": x})[0] for x in sample_inputs(5)]


def _compile(
    segments: dict[str, Path], embeddings: list[np.ndarray], directory: Path, visibility: str
) -> ZkSegmentArtifacts:
    return compile_segment(
        segments["head"].read_bytes(),
        embeddings[:4],
        directory,
        input_visibility=visibility,
        output_visibility="public",
    )


@pytest.fixture(scope="module")
def private_head(
    segments: dict[str, Path], embeddings: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> tuple[ZkSegmentArtifacts, dict[str, object]]:
    artifacts = _compile(segments, embeddings, tmp_path_factory.mktemp("private"), "private")
    return artifacts, prove_segment(artifacts, embeddings[4], artifacts.directory / "run")


@pytest.fixture(scope="module")
def public_head(
    segments: dict[str, Path], embeddings: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> tuple[ZkSegmentArtifacts, dict[str, object]]:
    artifacts = _compile(segments, embeddings, tmp_path_factory.mktemp("public"), "public")
    return artifacts, prove_segment(artifacts, embeddings[4], artifacts.directory / "run")


def _instances(proof: dict[str, object]) -> list[str]:
    instances = proof["instances"]
    assert isinstance(instances, list)
    return list(instances[0])


def test_private_boundary_poseidon_equals_the_proof_instance(private_head: Head, embeddings: list[np.ndarray]) -> None:
    artifacts, proof = private_head
    assert _instances(proof)[0] == poseidon_commitment(embeddings[4], artifacts.input_scale)


def test_private_boundary_poseidon_of_another_tensor_differs(private_head: Head, embeddings: list[np.ndarray]) -> None:
    artifacts, proof = private_head
    tampered = embeddings[4].copy()
    tampered[0, 0] += 0.01
    assert _instances(proof)[0] != poseidon_commitment(tampered, artifacts.input_scale)


def test_private_boundary_proof_does_not_reveal_the_tensor(private_head: Head, embeddings: list[np.ndarray]) -> None:
    artifacts, proof = private_head
    felts = set(tensor_felts(embeddings[4], artifacts.input_scale))
    assert len(_instances(proof)) == 1 + 2
    assert not felts & set(_instances(proof)[1:])


def test_public_boundary_felts_equal_the_proof_instances(public_head: Head, embeddings: list[np.ndarray]) -> None:
    artifacts, proof = public_head
    assert _instances(proof)[:256] == tensor_felts(embeddings[4], artifacts.input_scale)


def test_proven_decision_matches_onnxruntime_within_quantization(
    public_head: Head, segments: dict[str, Path], embeddings: list[np.ndarray]
) -> None:
    artifacts, proof = public_head
    head = ort.InferenceSession(str(segments["head"]), providers=["CPUExecutionProvider"])
    (expected,) = head.run(None, {"embedding": embeddings[4]})
    np.testing.assert_allclose(proof_outputs(artifacts, proof, 256), expected.ravel(), atol=0.02)
