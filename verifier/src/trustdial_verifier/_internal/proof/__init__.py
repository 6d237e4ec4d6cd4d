"""Checking ezkl proofs offline: ``verify_proof`` and the helpers the hybrid pipeline needs."""

from trustdial_verifier._internal.proof.artifacts import ArtifactFile, Artifacts, load_artifacts
from trustdial_verifier._internal.proof.quantization import felts_to_floats, tensor_poseidon, tensor_to_felts
from trustdial_verifier._internal.proof.tensors import (
    Tensor,
    canonical_tensor_json,
    load_tensor_file,
    parse_tensor_json,
)
from trustdial_verifier._internal.proof.verify import ProofReport, verify_proof

__all__ = [
    "ArtifactFile",
    "Artifacts",
    "ProofReport",
    "Tensor",
    "canonical_tensor_json",
    "felts_to_floats",
    "load_artifacts",
    "load_tensor_file",
    "parse_tensor_json",
    "tensor_poseidon",
    "tensor_to_felts",
    "verify_proof",
]
