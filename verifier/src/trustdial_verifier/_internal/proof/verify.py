"""One entry point: ``verify_proof`` checks an ezkl proof against pinned artifacts.

Order of checks (each fails closed with a stable code):
caller pins present (vk + settings from a source outside the directory, else NO_PINS) →
artifacts.json shape → every file digest → caller pins → SRS trust → ezkl version → settings
agree with artifacts.json → proof shape and instance count → ezkl KZG verification → binding of
the public instances to the tensors (or Poseidon hashes) the caller supplied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trustdial_verifier._internal.proof import ezkl_calls
from trustdial_verifier._internal.proof.artifacts import (
    MAX_PROOF_JSON_BYTES,
    Artifacts,
    check_file_hashes,
    load_artifacts,
    read_json_file,
    sha256_file,
)
from trustdial_verifier._internal.proof.instances import InstanceLayout, layout_from_settings
from trustdial_verifier._internal.proof.pins import require_pins
from trustdial_verifier._internal.proof.quantization import felts_to_floats, tensor_poseidon, tensor_to_felts
from trustdial_verifier._internal.proof.srs import SRS_KIND_CEREMONY, SRS_KIND_DEV, ceremony_k, classify_srs
from trustdial_verifier._internal.proof.tensors import Tensor
from trustdial_verifier.errors import InputError, VerificationError, describe_value


@dataclass(frozen=True)
class ProofReport:
    """What was proven, and what it was checked against."""

    proof_sha256: str
    ezkl_version: str
    srs_kind: str
    vk_sha256: str
    settings_sha256: str
    srs_sha256: str
    logrows: int
    input_visibility: str
    output_visibility: str
    input_scale: int  # ezkl quantization scale of the input felts (settings.json), what a Poseidon hash of them means
    output_scale: int
    input_type: str  # ezkl element type of the input as the pinned settings fix it ("F32", ...)
    output_type: str
    input_shape: list[int] | None  # shape of a public tensor as the pinned settings fix it
    output_shape: list[int] | None
    input_checked: bool
    output_checked: bool
    input_sha256: str | None
    output_sha256: str | None
    input_poseidon: str | None
    output_poseidon: str | None
    public_outputs: list[float] | None
    instances: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def verify_proof(
    proof: Path,
    artifacts_dir: Path,
    *,
    inputs: Tensor | None = None,
    outputs: Tensor | None = None,
    input_poseidon: str | None = None,
    output_poseidon: str | None = None,
    allow_dev_srs: bool = False,
    expected_sha256: Mapping[str, str] | None,
) -> ProofReport:
    """Verify ``proof`` (proof.json) with the vk, settings and SRS pinned in ``artifacts_dir``.

    ``inputs``/``outputs`` are the tensors the proof must be about: for public visibility their
    quantized values must equal the instances, for hashed visibility their Poseidon hash must.
    ``input_poseidon``/``output_poseidon`` compare a hashed instance with a hash obtained
    elsewhere (e.g. attested by an enclave). ``expected_sha256`` (required) maps file roles (vk,
    settings, srs, model, compiled_circuit) to digests from a trusted source outside
    ``artifacts_dir``, e.g. ``pins_from_manifest(manifest, segment)``; it must pin at least vk and
    settings. ``None`` or ``{}`` is refused with ``InputError("NO_PINS")``: the directory's own
    artifacts.json is never trusted on its own.
    """
    pins = require_pins(expected_sha256)
    ezkl_calls.load_ezkl()
    artifacts = load_artifacts(artifacts_dir)
    paths = check_file_hashes(artifacts_dir, artifacts)
    _check_pins(artifacts, pins)
    srs_kind = _check_srs(artifacts, allow_dev_srs=allow_dev_srs)
    installed = ezkl_calls.installed_ezkl_version()
    if artifacts.ezkl_version != installed:
        raise VerificationError(
            "EZKL_VERSION_MISMATCH",
            f"artifacts were made with ezkl {artifacts.ezkl_version}, installed ezkl is {installed}; "
            "formats differ across versions",
        )
    layout = layout_from_settings(_read_json(paths["settings"], "SETTINGS_MALFORMED"))
    _check_settings_agree(artifacts, layout)
    instances = _read_instances(proof, layout)
    ezkl_calls.verify_proof_file(proof, paths["settings"], paths["vk"], paths["srs"])

    input_part = layout.input_part(instances)
    output_part = layout.output_part(instances)
    if inputs is not None:
        _check_tensor(
            inputs, input_part, layout.input_visibility, layout.input_scale, layout.input_is_f32, side="INPUT"
        )
    if outputs is not None:
        _check_tensor(outputs, output_part, layout.output_visibility, layout.output_scale, False, side="OUTPUT")
    if input_poseidon is not None:
        _check_poseidon(input_poseidon, input_part, layout.input_visibility, side="INPUT")
    if output_poseidon is not None:
        _check_poseidon(output_poseidon, output_part, layout.output_visibility, side="OUTPUT")

    return ProofReport(
        proof_sha256=sha256_file(proof),
        ezkl_version=installed,
        srs_kind=srs_kind,
        vk_sha256=artifacts.sha256_of("vk"),
        settings_sha256=artifacts.sha256_of("settings"),
        srs_sha256=artifacts.sha256_of("srs"),
        logrows=layout.logrows,
        input_visibility=layout.input_visibility,
        output_visibility=layout.output_visibility,
        input_scale=layout.input_scale,
        output_scale=layout.output_scale,
        input_type=layout.input_type,
        output_type=layout.output_type,
        input_shape=None if layout.input_shape is None else list(layout.input_shape),
        output_shape=None if layout.output_shape is None else list(layout.output_shape),
        input_checked=inputs is not None or input_poseidon is not None,
        output_checked=outputs is not None or output_poseidon is not None,
        input_sha256=inputs.sha256 if inputs is not None else None,
        output_sha256=outputs.sha256 if outputs is not None else None,
        input_poseidon=input_part[0] if layout.input_visibility == "hashed" else None,
        output_poseidon=output_part[0] if layout.output_visibility == "hashed" else None,
        public_outputs=felts_to_floats(output_part, layout.output_scale)
        if layout.output_visibility == "public"
        else None,
        instances=instances,
    )


def _check_pins(artifacts: Artifacts, expected: Mapping[str, str]) -> None:
    for role, digest in expected.items():
        entry = artifacts.files.get(role)
        if entry is None:
            raise VerificationError(
                "PINNED_HASH_MISMATCH", f"expected {role} with sha256 {digest}; artifacts name no {role}"
            )
        if entry.sha256 != digest.lower():
            raise VerificationError(
                "PINNED_HASH_MISMATCH", f"expected {role} sha256 {digest.lower()}, found {entry.sha256}"
            )


def _check_srs(artifacts: Artifacts, *, allow_dev_srs: bool) -> str:
    digest = artifacts.sha256_of("srs")
    kind = classify_srs(digest)
    if artifacts.srs_kind not in (SRS_KIND_CEREMONY, SRS_KIND_DEV):
        raise VerificationError(
            "ARTIFACTS_MALFORMED",
            f"expected srs_kind ceremony or dev-insecure, found {describe_value(artifacts.srs_kind)}",
        )
    if artifacts.srs_kind == SRS_KIND_CEREMONY and kind != SRS_KIND_CEREMONY:
        raise VerificationError(
            "SRS_NOT_CEREMONY", f"artifacts claim a ceremony SRS but sha256 {digest} is not a known ceremony file"
        )
    if kind == SRS_KIND_DEV and not allow_dev_srs:
        raise VerificationError(
            "DEV_SRS_REFUSED",
            f"SRS sha256 {digest} is not a ceremony file: whoever generated it could forge proofs "
            "(pass --allow-dev-srs / allow_dev_srs=True only for your own test setup)",
        )
    k = ceremony_k(digest)
    if k is not None and k < artifacts.logrows:
        raise VerificationError("SRS_TOO_SMALL", f"expected an SRS with k >= {artifacts.logrows}, found ceremony k={k}")
    return kind


def _check_settings_agree(artifacts: Artifacts, layout: InstanceLayout) -> None:
    claimed = (
        artifacts.input_visibility,
        artifacts.output_visibility,
        artifacts.logrows,
        artifacts.input_scale,
        artifacts.output_scale,
    )
    found = (layout.input_visibility, layout.output_visibility, layout.logrows, layout.input_scale, layout.output_scale)
    if claimed != found:
        raise VerificationError(
            "SETTINGS_MISMATCH",
            f"artifacts.json says (input vis, output vis, logrows, input scale, output scale) = {claimed}, "
            f"settings.json says {found}",
        )


def _read_json(path: Path, code: str) -> Any:
    return read_json_file(path, code, max_bytes=MAX_PROOF_JSON_BYTES)


def _read_instances(proof: Path, layout: InstanceLayout) -> list[str]:
    if not proof.is_file():
        raise InputError("PROOF_NOT_FOUND", f"expected a proof file at {proof}")
    doc = _read_json(proof, "PROOF_MALFORMED")
    instances = doc.get("instances") if isinstance(doc, dict) else None
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], list):
        raise VerificationError("PROOF_MALFORMED", "expected 'instances' to be a list holding one instance column")
    column = instances[0]
    if not all(isinstance(f, str) and len(f) == 64 for f in column):
        raise VerificationError("PROOF_MALFORMED", "expected every instance to be a 64-hex-char field element")
    if len(column) != layout.total:
        raise VerificationError(
            "INSTANCE_COUNT_MISMATCH",
            f"settings imply {layout.total} instances ({layout.input_count} input + {layout.output_count} output), "
            f"proof has {len(column)}",
        )
    return [str(f) for f in column]


def _check_tensor(tensor: Tensor, part: list[str], visibility: str, scale: int, as_f32: bool, *, side: str) -> None:
    try:
        _check_quantized(tensor, part, visibility, scale, as_f32, side=side)
    except ezkl_calls.QuantizationError as err:
        raise VerificationError(
            f"{side}_INSTANCE_MISMATCH", f"the given tensor cannot be the proof's instances: {err.reason}"
        ) from err


def _check_quantized(tensor: Tensor, part: list[str], visibility: str, scale: int, as_f32: bool, *, side: str) -> None:
    if visibility == "public":
        if len(tensor.values) != len(part):
            raise VerificationError(
                f"{side}_INSTANCE_MISMATCH", f"expected a tensor of {len(part)} values, got {len(tensor.values)}"
            )
        felts = tensor_to_felts(tensor.values, scale, as_f32=as_f32)
        for index, (want, got) in enumerate(zip(felts, part, strict=True)):
            if want != got:
                raise VerificationError(
                    f"{side}_INSTANCE_MISMATCH",
                    f"element {index}: the given tensor quantizes to {want} at scale {scale}, "
                    f"the proof's instance is {got}",
                )
        return
    _check_poseidon(tensor_poseidon(tensor.values, scale, as_f32=as_f32), part, visibility, side=side)


def _check_poseidon(expected: str, part: list[str], visibility: str, *, side: str) -> None:
    if visibility != "hashed":
        raise VerificationError(
            f"{side}_HASH_MISMATCH", f"expected a hashed {side.lower()} instance; the circuit's is {visibility}"
        )
    if expected.lower() != part[0]:
        raise VerificationError(
            f"{side}_HASH_MISMATCH",
            f"expected Poseidon {expected.lower()} for the {side.lower()}, proof instance is {part[0]}",
        )
