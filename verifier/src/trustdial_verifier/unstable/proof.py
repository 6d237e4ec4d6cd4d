"""ezkl proofs: artifact manifests, tensor files, quantization and Poseidon commitments, SRS kinds, the
instance layout, the ezkl calls and proof verification.

Unstable: see :mod:`trustdial_verifier.unstable`."""

from trustdial_verifier._internal.proof import ezkl_calls
from trustdial_verifier._internal.proof.artifacts import (
    ARTIFACTS_FILE,
    ArtifactFile,
    Artifacts,
    check_file_hashes,
    load_artifacts,
    sha256_file,
    write_artifacts,
)
from trustdial_verifier._internal.proof.instances import layout_from_settings
from trustdial_verifier._internal.proof.quantization import felts_to_floats, tensor_poseidon, tensor_to_felts
from trustdial_verifier._internal.proof.srs import SRS_KIND_CEREMONY, SRS_KIND_DEV, ceremony_k
from trustdial_verifier._internal.proof.tensors import (
    Tensor,
    canonical_tensor_json,
    load_tensor_file,
    tensor_from_bytes,
)
from trustdial_verifier._internal.proof.verify import verify_proof

__all__ = [
    "ARTIFACTS_FILE",
    "SRS_KIND_CEREMONY",
    "SRS_KIND_DEV",
    "ArtifactFile",
    "Artifacts",
    "Tensor",
    "canonical_tensor_json",
    "ceremony_k",
    "check_file_hashes",
    "ezkl_calls",
    "felts_to_floats",
    "layout_from_settings",
    "load_artifacts",
    "load_tensor_file",
    "sha256_file",
    "tensor_from_bytes",
    "tensor_poseidon",
    "tensor_to_felts",
    "verify_proof",
    "write_artifacts",
]
