"""The ``tee`` evidence of a composite step: a TEE receipt (docs/receipts.md) and the attestation
document binding its key, checked against the manifest's PCRs. Reports what the enclave signed:
model, request nonce (the step nonce), timestamps, the SHA-256 commitments of the step's one
input and one output tensor, and the Poseidon commitments it signed in ``params``
(``poseidon/<tensor>`` at scale ``poseidon_scale``) for private boundaries."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from cryptography import x509

from trustdial_verifier._internal.attestation.verify import PcrsEqual, document_digest
from trustdial_verifier._internal.composite.errors import CompositeError
from trustdial_verifier._internal.composite.evidence import VerifiedEvidence
from trustdial_verifier._internal.composite.receipt import Commitment, Step
from trustdial_verifier._internal.composite.verify import StepContext
from trustdial_verifier._internal.receipts.attested import verify_binding_document
from trustdial_verifier._internal.receipts.verify import open_receipt
from trustdial_verifier._internal.tensors import COMMITMENT_KIND_SHA256
from trustdial_verifier.errors import InputError

POSEIDON_PARAM_PREFIX = "poseidon/"
EXECUTOR_PARAM = "executor"  # docs/composite-receipts.md: what a tee+zk enclave signs
CIRCUIT_PARAM = "circuit_sha256"
CIRCUIT_EXECUTOR = "ezkl-circuit"
POSEIDON_SCALE_PARAM = "poseidon_scale"
PCR_NAMES = {"PCR0": 0, "PCR1": 1, "PCR2": 2, "PCR8": 8}


def _b64(evidence: Mapping[str, Any], key: str, step: Step) -> bytes:
    value = evidence.get(key)
    if not isinstance(value, str):
        raise CompositeError("COMPOSITE_MALFORMED", f"step {step.index}: expected tee.{key} as base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise CompositeError("COMPOSITE_MALFORMED", f"step {step.index}: tee.{key} is not base64") from err


def expected_pcrs(context: StepContext) -> dict[int, bytes]:
    pcrs = {PCR_NAMES[name]: bytes.fromhex(value) for name, value in context.manifest.pcrs.items() if value}
    if not {0, 1, 2} <= set(pcrs):
        raise CompositeError("COMPOSITE_MANIFEST_PCRS", "the manifest must pin PCR0, PCR1 and PCR2")
    return pcrs


def check_tee_evidence(step: Step, evidence: Mapping[str, Any], context: StepContext) -> VerifiedEvidence:
    if set(evidence) != {"receipt", "attestation"}:
        raise CompositeError("COMPOSITE_MALFORMED", f"step {step.index}: tee evidence holds receipt and attestation")
    if len(step.inputs) != 1 or len(step.outputs) != 1:
        raise CompositeError(
            "COMPOSITE_STEP_TENSORS", f"step {step.index}: a TEE step commits to exactly one input and one output"
        )
    receipt, attestation = _b64(evidence, "receipt", step), _b64(evidence, "attestation", step)
    root = context.options.get("root")
    if root is not None and not isinstance(root, x509.Certificate):
        raise InputError(
            "BAD_ROOT", f"expected the root option to be an X.509 certificate, found {type(root).__name__}"
        )
    document = verify_binding_document(
        attestation,
        PcrsEqual(expected_pcrs(context)),
        root=root,
        allow_debug=bool(context.options.get("allow_debug", False)),
    )
    if document.public_key is None:  # verify_binding_document refuses this; explicit so python -O cannot drop it
        raise CompositeError("COMPOSITE_MALFORMED", f"step {step.index}: the binding document carries no public key")
    opened = open_receipt(receipt, public_key=document.public_key, attestation_digest=document_digest(document.raw))
    statement = opened.statement
    if statement.op != "infer":
        raise CompositeError(
            "COMPOSITE_MALFORMED", f"step {step.index}: expected an infer receipt, found {statement.op}"
        )
    for side, commitment in (("input", statement.input), ("output", statement.output)):
        if commitment.kind != COMMITMENT_KIND_SHA256:
            raise CompositeError(
                "COMPOSITE_MALFORMED", f"step {step.index}: expected {side} kind {COMMITMENT_KIND_SHA256}"
            )
    poseidon = {
        key.removeprefix(POSEIDON_PARAM_PREFIX): value
        for key, value in statement.params.items()
        if key.startswith(POSEIDON_PARAM_PREFIX) and isinstance(value, str)
    }
    ((input_name, _),) = step.inputs.items()
    ((output_name, _),) = step.outputs.items()
    return VerifiedEvidence(
        kind="tee",
        inputs={input_name: Commitment(sha256=statement.input.digest.hex(), poseidon=poseidon.get(input_name))},
        outputs={output_name: Commitment(sha256=statement.output.digest.hex(), poseidon=poseidon.get(output_name))},
        model_sha256=statement.model.hex(),
        nonce=statement.nonce.hex(),
        issued_at_ms=statement.timestamp_ms,
        attested_at_ms=document.timestamp_ms,
        executed_circuit_sha256=_executed_circuit(statement.params),
        poseidon_scales=_poseidon_scales(statement.params, output_name),
        prover=f"enclave {document.module_id} (PCR0 {document.pcrs[0].hex()[:16]}...), receipt seq {statement.seq}",
        evidence_bytes=len(receipt) + len(attestation),
    )


def _poseidon_scales(params: Mapping[str, object], output_name: str) -> dict[str, int]:
    """The scale the enclave quantized its output at for ``poseidon/<output>``: the signed
    ``poseidon_scale`` (chosen by whoever sent the request). An enclave executing a circuit hashes at
    that circuit's own scales (its step's proof reports them); a ``poseidon_scale`` it also signed
    does not describe those hashes, so none is reported."""
    scale = params.get(POSEIDON_SCALE_PARAM)
    if _executed_circuit(params) is not None or type(scale) is not int:
        return {}
    return {output_name: scale}


def _executed_circuit(params: Mapping[str, object]) -> str | None:
    """The compiled circuit an enclave that executes ezkl circuits signed (``executor`` =
    ``ezkl-circuit``, ``circuit_sha256``); None for an enclave that ran the ONNX model itself."""
    circuit = params.get(CIRCUIT_PARAM)
    if params.get(EXECUTOR_PARAM) == CIRCUIT_EXECUTOR and isinstance(circuit, str):
        return circuit
    return None
