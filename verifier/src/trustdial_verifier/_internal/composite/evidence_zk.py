"""The ``zk`` evidence of a composite step: an ezkl proof, verified with the verifying key,
settings and SRS of the segment's published artifacts (``<zk_artifacts>/<segment>/``) whose
hashes the signed manifest pins. Public boundary tensors are bound by recomputing the proof's
instances from the exact bytes in the receipt; private ones by the Poseidon instance."""

from __future__ import annotations

import json
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trustdial_verifier._internal.composite.errors import CompositeError
from trustdial_verifier._internal.composite.evidence import VerifiedEvidence
from trustdial_verifier._internal.composite.receipt import Commitment, Step, TensorData
from trustdial_verifier._internal.composite.tensor_commitment import tensor_sha256
from trustdial_verifier._internal.composite.verify import StepContext
from trustdial_verifier._internal.proof import verify_proof
from trustdial_verifier._internal.proof.quantization import felts_to_floats, tensor_to_felts
from trustdial_verifier._internal.proof.tensors import tensor_from_bytes
from trustdial_verifier.errors import InputError


def _public(name: str, tensor: TensorData) -> Any:
    try:
        return tensor_from_bytes(tensor.dtype, tensor.shape, tensor.data)
    except InputError as err:
        raise CompositeError("COMPOSITE_MALFORMED", f"tensor {name!r}: {err.reason}") from err


#: ezkl's element type (settings.json ``input_types``/``output_types``) -> the dtype a public tensor must carry
EZKL_DTYPES = {"F32": "float32", "F64": "float64"}


def _check_dtype(step: Step, side: str, name: str, tensor: TensorData, ezkl_type: str) -> None:
    """The pinned settings fix the element type of a public tensor: the same values re-typed (float32 as
    float64) are another tensor, with another SHA-256, that the circuit did not compute."""
    expected = EZKL_DTYPES.get(ezkl_type)
    if tensor.dtype != expected:
        raise CompositeError(
            f"{side}_INSTANCE_MISMATCH",
            f"step {step.index}: tensor {name!r} has dtype {tensor.dtype}, the circuit's settings type it "
            f"{ezkl_type or 'not at all'} ({expected or 'no dtype this verifier binds'})",
        )


def _check_shape(step: Step, side: str, name: str, tensor: TensorData, pinned: list[int] | None) -> None:
    """A public tensor's instances are its flattened values; the pinned settings fix its shape. A
    receipt relabelling [1, 2] as [2, 1] states a tensor the circuit did not compute."""
    if pinned is not None and list(tensor.shape) != pinned:
        raise CompositeError(
            f"{side}_INSTANCE_MISMATCH",
            f"step {step.index}: tensor {name!r} has shape {list(tensor.shape)}, the circuit's is {pinned}",
        )


def _check_exact(step: Step, name: str, tensor: TensorData, scale: int) -> None:
    """A step's public output is released exactly as the proof's felts dequantize (what the circuit
    computed), not any value that rounds to them: otherwise a receipt may move each output by up to
    half a quantization step (e.g. across a decision threshold) and still match the instances."""
    values = _public(name, tensor).values
    exact = felts_to_floats(tensor_to_felts(values, scale, as_f32=False), scale)
    fmt = {"float32": "f", "float64": "d"}[tensor.dtype]  # _public admitted only these
    try:
        expected = struct.pack(f"<{len(exact)}{fmt}", *exact)
    except (OverflowError, struct.error):
        expected = b""
    if expected != tensor.data:
        raise CompositeError(
            "OUTPUT_INSTANCE_MISMATCH",
            f"step {step.index}: tensor {name!r} holds {list(values)[:8]}, the proof's instances dequantize to "
            f"{exact[:8]} at scale {scale}: a public output is released exactly as proven",
        )


def check_zk_evidence(step: Step, evidence: Mapping[str, Any], context: StepContext) -> VerifiedEvidence:
    if set(evidence) != {"proof"} or not isinstance(evidence["proof"], Mapping):
        raise CompositeError("COMPOSITE_MALFORMED", f"step {step.index}: zk evidence holds one 'proof' object")
    if len(step.inputs) != 1 or len(step.outputs) != 1:
        raise CompositeError(
            "COMPOSITE_STEP_TENSORS", f"step {step.index}: a ZK step proves exactly one input and one output"
        )
    root = context.options.get("zk_artifacts")
    if not isinstance(root, Path):
        raise InputError("ZK_ARTIFACTS_MISSING", "checking zk steps needs the published artifacts (--zk-artifacts DIR)")
    pins = context.measurement.zk_pins
    if not pins:
        raise CompositeError(
            "COMPOSITE_VK_MISMATCH",
            f"step {step.index} ({step.segment}): expected the manifest to pin a zk entry for this segment, "
            "found none (an unpinned artifacts directory proves nothing)",
        )
    ((input_name, _),) = step.inputs.items()
    ((output_name, _),) = step.outputs.items()
    public = context.public_tensors
    inputs = _public(input_name, public[input_name]) if input_name in public else None
    outputs = _public(output_name, public[output_name]) if output_name in public else None
    proof_text = json.dumps(evidence["proof"], allow_nan=False)
    with tempfile.TemporaryDirectory(prefix="trustdial-composite-") as scratch:
        proof_path = Path(scratch) / "proof.json"
        proof_path.write_text(proof_text)
        report = verify_proof(
            proof_path,
            root / step.segment,
            inputs=inputs,
            outputs=outputs,
            allow_dev_srs=bool(context.options.get("allow_dev_srs", False)),
            expected_sha256=pins,
        )
    if inputs is not None:
        _check_dtype(step, "INPUT", input_name, public[input_name], report.input_type)
        _check_shape(step, "INPUT", input_name, public[input_name], report.input_shape)
    if outputs is not None:
        _check_dtype(step, "OUTPUT", output_name, public[output_name], report.output_type)
        _check_shape(step, "OUTPUT", output_name, public[output_name], report.output_shape)
        _check_exact(step, output_name, public[output_name], report.output_scale)
    if inputs is None and report.input_poseidon is None:
        raise CompositeError("COMPOSITE_LINK_UNPROVEN", f"step {step.index}: private input but no hashed instance")
    if outputs is None and report.output_poseidon is None:
        raise CompositeError("COMPOSITE_LINK_UNPROVEN", f"step {step.index}: private output but no hashed instance")
    return VerifiedEvidence(
        kind="zk",
        inputs={
            input_name: Commitment(
                sha256=tensor_sha256(input_name, public[input_name]) if inputs is not None else None,
                poseidon=report.input_poseidon,
            )
        },
        outputs={
            output_name: Commitment(
                sha256=tensor_sha256(output_name, public[output_name]) if outputs is not None else None,
                poseidon=report.output_poseidon,
            )
        },
        vk_sha256=report.vk_sha256,
        poseidon_scales={input_name: report.input_scale, output_name: report.output_scale},
        prover=f"ezkl {report.ezkl_version} proof, vk {report.vk_sha256[:16]}..., SRS {report.srs_kind}",
        evidence_bytes=len(proof_text),
    )
