"""Attacks on ezkl proof verification with genuine proof and vk: the prover hands over an artifacts
directory whose settings.json reinterprets the public instances (scale, input/output split)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from trustdial_verifier._internal.proof import verify_proof
from trustdial_verifier._internal.proof.tensors import Tensor, load_tensor_file
from trustdial_verifier.errors import InputError, VerificationError

from prover.circuit_settings import CircuitOptions
from prover.compile import compile_model
from prover.example_models import save_mlp
from prover.prove import prove
from prover.srs_files import generate_dev_srs

pytestmark = pytest.mark.slow
SIZES = [6, 8, 3]


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A compiled public/public circuit (dev SRS) and one genuine proof: (artifacts dir, proof.json)."""
    root = tmp_path_factory.mktemp("zk-redteam")
    srs = generate_dev_srs(root / "dev-kzg11.srs", 11)
    model = save_mlp(root / "mlp.onnx", SIZES, seed=3)
    calibration = root / "calibration.json"
    rng = np.random.default_rng(3)
    calibration.write_text(json.dumps({"input_data": [rng.normal(size=SIZES[0] * 8).tolist()]}))
    options = CircuitOptions(input_visibility="public", output_visibility="public").with_decomposition(256, 4)
    directory = root / "circuit"
    compile_model(model, calibration, directory, srs=srs, dev_srs=True, options=options)
    values = rng.normal(size=SIZES[0]).astype(np.float32)
    proof = prove(directory, Tensor("float32", (1, SIZES[0]), tuple(float(v) for v in values)), root / "proof.json")
    return directory, proof


def _tamper_settings(directory: Path, change: Callable[[dict[str, object], dict[str, object]], None]) -> None:
    """Edit settings.json and keep artifacts.json self-consistent (what a dishonest prover would do)."""
    artifacts_path = directory / "artifacts.json"
    artifacts = json.loads(artifacts_path.read_text())
    settings_path = directory / artifacts["files"]["settings"]["path"]
    settings = json.loads(settings_path.read_text())
    change(settings, artifacts)
    settings_path.write_text(json.dumps(settings))
    artifacts["files"]["settings"]["sha256"] = hashlib.sha256(settings_path.read_bytes()).hexdigest()
    artifacts_path.write_text(json.dumps(artifacts))


def _pins(directory: Path, *roles: str) -> dict[str, str]:
    files = json.loads((directory / "artifacts.json").read_text())["files"]
    return {role: files[role]["sha256"] for role in roles}


def _copy(directory: Path, target: Path) -> Path:
    target.mkdir()
    for item in directory.iterdir():
        (target / item.name).write_bytes(item.read_bytes())
    return target


def _rescale(settings: dict[str, object], artifacts: dict[str, object]) -> None:
    settings["model_output_scales"] = [0]
    artifacts["output_scale"] = 0


def test_vk_pin_alone_is_refused_because_settings_decide_what_the_instances_mean(
    genuine: tuple[Path, Path], tmp_path: Path
) -> None:
    directory, proof = genuine
    pins = _pins(directory, "vk")
    tampered = _copy(directory, tmp_path / "tampered")
    _tamper_settings(tampered, _rescale)  # genuine outputs ~0.6 would be reported as ~5000
    with pytest.raises(InputError) as caught:
        verify_proof(proof, tampered, allow_dev_srs=True, expected_sha256=pins)
    assert caught.value.code == "INCOMPLETE_PINS"


def test_settings_pin_alone_is_refused_because_the_vk_decides_the_circuit(genuine: tuple[Path, Path]) -> None:
    directory, proof = genuine
    with pytest.raises(InputError) as caught:
        verify_proof(proof, directory, allow_dev_srs=True, expected_sha256=_pins(directory, "settings"))
    assert caught.value.code == "INCOMPLETE_PINS"


def test_rescaled_output_is_rejected_when_vk_and_settings_are_pinned(
    genuine: tuple[Path, Path], tmp_path: Path
) -> None:
    directory, proof = genuine
    pins = _pins(directory, "vk", "settings")
    tampered = _copy(directory, tmp_path / "tampered")
    _tamper_settings(tampered, _rescale)
    with pytest.raises(VerificationError) as caught:
        verify_proof(proof, tampered, allow_dev_srs=True, expected_sha256=pins)
    assert caught.value.code == "PINNED_HASH_MISMATCH"


def test_input_output_split_moved_is_rejected_when_vk_and_settings_are_pinned(
    genuine: tuple[Path, Path], tmp_path: Path
) -> None:
    directory, proof = genuine
    pins = _pins(directory, "vk", "settings")

    def shift(settings: dict[str, object], artifacts: dict[str, object]) -> None:
        settings["model_instance_shapes"] = [[1, SIZES[0] - 1], [1, SIZES[-1] + 1]]

    tampered = _copy(directory, tmp_path / "tampered")
    _tamper_settings(tampered, shift)
    with pytest.raises(VerificationError) as caught:
        verify_proof(proof, tampered, allow_dev_srs=True, expected_sha256=pins)
    assert caught.value.code == "PINNED_HASH_MISMATCH"


def test_vk_and_settings_pins_of_the_genuine_files_are_accepted(genuine: tuple[Path, Path]) -> None:
    directory, proof = genuine
    report = verify_proof(proof, directory, allow_dev_srs=True, expected_sha256=_pins(directory, "vk", "settings"))
    assert report.output_visibility == "public"


DEEP_JSON = "[" * 100_000 + "]" * 100_000


def test_proof_nested_beyond_the_json_parsers_recursion_limit_is_malformed(
    genuine: tuple[Path, Path], tmp_path: Path
) -> None:
    directory, _ = genuine
    proof = tmp_path / "proof.json"
    proof.write_text(DEEP_JSON)
    with pytest.raises(VerificationError) as caught:
        verify_proof(proof, directory, allow_dev_srs=True, expected_sha256=_pins(directory, "vk", "settings"))
    assert caught.value.code == "PROOF_MALFORMED"


@pytest.mark.parametrize("content", [DEEP_JSON.encode(), b'{"format": "\xff"}'], ids=["deep", "not-utf8"])
def test_artifacts_file_that_cannot_be_parsed_is_malformed(
    genuine: tuple[Path, Path], tmp_path: Path, content: bytes
) -> None:
    directory, proof = genuine
    tampered = _copy(directory, tmp_path / "tampered")
    (tampered / "artifacts.json").write_bytes(content)
    with pytest.raises(VerificationError) as caught:
        verify_proof(proof, tampered, allow_dev_srs=True, expected_sha256=_pins(directory, "vk", "settings"))
    assert caught.value.code == "ARTIFACTS_MALFORMED"


@pytest.mark.parametrize("content", [DEEP_JSON.encode(), b'{"dtype": "\xff"}'], ids=["deep", "not-utf8"])
def test_tensor_file_that_cannot_be_parsed_is_a_usage_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "tensor.json"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_tensor_file(path, side="output")
    assert caught.value.code == "TENSOR_MALFORMED"


def test_ezkl_format_tensor_with_an_integer_beyond_float64_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "output.json"
    path.write_text('{"output_data": [[1' + "0" * 400 + "]]}")
    with pytest.raises(InputError) as caught:
        load_tensor_file(path, side="output")
    assert caught.value.code == "TENSOR_MALFORMED"
