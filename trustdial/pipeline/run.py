"""``trustdial pipeline run``: one inference through a hybrid pipeline, producing one composite
receipt (docs/composite-receipts.md).

``tee`` segments run in an enclave service (``--local``: the enclave app in-process with the
simulated NSM reporting the manifest's PCRs, development only; ``--gateway``: a running gateway);
every step's receipt is bound to the step nonce derived from the request nonce, the policy hash and
the step position. ``zk`` segments are proven by a :class:`StepProver`: inline with the prover, or
through the prover's job queue (``trustdial.pipeline.queue_prover``). ``tee+zk`` segments do both
on the same input, the enclave executing the segment's circuit semantics so that its signed
commitments and the proof's instances are the same tensors. A private boundary from a TEE step
into a ZK step is linked by the Poseidon hash the enclave signs (at the ZK circuit's input scale)
and the proof's hashed instance; a public one by the tensor's bytes, their SHA-256 and the proof's
instances."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
from trustdial_verifier.errors import VerificationError
from trustdial_verifier.unstable.composite import MODE_EVIDENCE, MODE_TEE_ZK, VISIBILITY_PRIVATE, PipelinePolicy
from trustdial_verifier.unstable.decoding import strict_json
from trustdial_verifier.unstable.measurements import parse_manifest, signed_payload
from trustdial_verifier.unstable.proof import Tensor as ProofTensor
from trustdial_verifier.unstable.proof import (
    felts_to_floats,
    layout_from_settings,
    load_artifacts,
    tensor_from_bytes,
    tensor_poseidon,
    tensor_to_felts,
)
from trustdial_verifier.unstable.receipts import decode_receipt, decode_statement
from trustdial_verifier.unstable.tensors import Tensor, commit_tensors

from enclave_app.circuit_model import CIRCUIT_PARAM, EXECUTOR, EXECUTOR_PARAM, load_circuit_model
from enclave_app.models import ModelRegistry, load_model
from enclave_app.nsm.simulated import SimulatedNsm
from enclave_app.service import EnclaveService
from prover.prove import prove
from trustdial.pipeline.composite_writer import StepRecord, TensorCommitments, build_composite, step_nonce
from trustdial.pipeline.errors import PipelineError
from trustdial.pipeline.spec import PipelineSpec

Progress = Callable[[str], None]
PCR_INDEX = {"PCR0": 0, "PCR1": 1, "PCR2": 2, "PCR8": 8}


@dataclass(frozen=True)
class SplitArtifacts:
    directory: Path
    segment_files: Mapping[str, Path]
    zk_dirs: Mapping[str, Path]


@dataclass(frozen=True)
class RunResult:
    receipt: dict[str, Any]
    outputs: Mapping[str, np.ndarray]
    step_seconds: Mapping[str, float]
    total_seconds: float


def load_split(directory: Path) -> SplitArtifacts:
    try:
        document = json.loads((directory / "split.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise PipelineError("PIPELINE_SPLIT_MISSING", f"run `trustdial pipeline split` first: {err}") from err
    return SplitArtifacts(
        directory=directory,
        segment_files={s["name"]: directory / s["file"] for s in document["segments"]},
        zk_dirs={z["name"]: directory / z["artifacts"] for z in document.get("zk", [])},
    )


#: The largest input file ``read_input`` takes (base64 tensors of an image-sized model input fit many times over).
MAX_INPUT_BYTES = 64 << 20


def read_input(path: Path) -> dict[str, np.ndarray]:
    """Named tensors as the gateway takes them: ``{name: {dtype, shape, data: base64}}``."""
    try:
        document = strict_json.loads(path.read_bytes(), max_bytes=MAX_INPUT_BYTES)
        return {
            name: Tensor(item["dtype"], tuple(item["shape"]), base64.b64decode(item["data"], validate=True)).to_array()
            for name, item in document.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError, VerificationError) as err:
        raise PipelineError(
            "PIPELINE_INPUT_INVALID", f"{path}: expected {{name: {{dtype, shape, data}}}}: {err}"
        ) from err


def _sha(name: str, value: np.ndarray) -> str:
    return commit_tensors({name: Tensor.from_array(value)}).hex()


class LocalEnclave:
    """The enclave app in-process over the simulated NSM: development only (its documents chain to
    the simulator's root, which a verifier accepts only when passed explicitly)."""

    def __init__(
        self, models: Mapping[str, Path], pcrs: Mapping[int, bytes], circuits: Mapping[str, Path] | None = None
    ) -> None:
        """``models``: segment name -> ONNX file; ``circuits``: segment name -> zk artifacts directory
        for the segments served with their circuit's semantics (``tee+zk``)."""
        self.nsm = SimulatedNsm(pcrs)
        circuits = circuits or {}
        registry = ModelRegistry(
            [
                load_circuit_model(path, circuits[name], name) if name in circuits else load_model(path, name)
                for name, path in models.items()
            ]
        )
        self.service = EnclaveService(registry, self.nsm, batch_size=1, batch_wait=0.0)

    def infer(
        self, model: str, inputs: Mapping[str, np.ndarray], nonce: bytes, poseidon_scale: int | None
    ) -> tuple[dict[str, np.ndarray], bytes, bytes]:
        """Outputs, the receipt, and the attestation document binding the receipt key."""
        tensors = {name: Tensor.from_array(value) for name, value in inputs.items()}
        outputs, receipt = asyncio.run(self.service.infer(model, tensors, nonce, poseidon_scale))
        return {name: t.to_array() for name, t in outputs.items()}, receipt, self.service.binding_document

    @property
    def root_pem(self) -> bytes:
        return self.nsm.root_pem

    def close(self) -> None:
        self.service.close()


class GatewayEnclave:
    """tee segments through a running gateway (``trustdial gateway``): ``POST /v1/infer`` with the
    step nonce, the Poseidon scale when a private boundary needs it, and the binding document."""

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.Client(timeout=timeout)

    def infer(
        self, model: str, inputs: Mapping[str, np.ndarray], nonce: bytes, poseidon_scale: int | None
    ) -> tuple[dict[str, np.ndarray], bytes, bytes]:
        body: dict[str, Any] = {
            "model": model,
            "inputs": {name: _tensor_json(value) for name, value in inputs.items()},
            "nonce": nonce.hex(),
            "include_attestation": True,
        }
        if poseidon_scale is not None:
            body["poseidon_scale"] = poseidon_scale
        try:
            response = self.client.post(f"{self.url}/v1/infer", json=body)
        except httpx.HTTPError as err:
            raise PipelineError("PIPELINE_GATEWAY_UNREACHABLE", f"{self.url}: {err}") from err
        if response.status_code != 200:
            raise PipelineError(
                "PIPELINE_GATEWAY_ERROR", f"{self.url} answered {response.status_code}: {response.text[:500]}"
            )
        reply = response.json()
        outputs = {
            name: Tensor(item["dtype"], tuple(item["shape"]), base64.b64decode(item["data"])).to_array()
            for name, item in reply["outputs"].items()
        }
        return outputs, base64.b64decode(reply["receipt"]), base64.b64decode(reply["attestation"])

    def close(self) -> None:
        self.client.close()


def _tensor_json(value: np.ndarray) -> dict[str, Any]:
    tensor = Tensor.from_array(value)
    return {"dtype": tensor.dtype, "shape": list(tensor.shape), "data": base64.b64encode(tensor.data).decode()}


class StepProver(Protocol):
    """Proves one zk segment on one input tensor and returns ezkl's proof JSON."""

    label: str  # for progress lines, e.g. "proving inline"

    def prove(self, segment: str, directory: Path, tensor: ProofTensor) -> dict[str, Any]: ...


class InlineProver:
    """Proves in this process with the prover (``prover.prove``)."""

    label = "proving inline"

    def prove(self, segment: str, directory: Path, tensor: ProofTensor) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="trustdial-run-") as scratch:
            path = prove(directory, tensor, Path(scratch) / "proof.json")
            document: dict[str, Any] = json.loads(path.read_text())
        return document


@dataclass(frozen=True)
class _Evidence:
    """One piece of a step's evidence and the commitments it binds (tensor -> kind -> hex)."""

    evidence: dict[str, Any]
    inputs: dict[str, dict[str, str]]
    outputs: dict[str, dict[str, str]]
    values: dict[str, np.ndarray]  # output values it makes available (empty for a private zk output)
    params: Mapping[str, Any] = field(default_factory=dict)  # tee: the statement params the enclave signed


def run_pipeline(
    spec: PipelineSpec,
    split: SplitArtifacts,
    inputs: Mapping[str, np.ndarray],
    *,
    manifest_signed: bytes,
    enclave: LocalEnclave | GatewayEnclave,
    request_nonce: str | None = None,
    prover: StepProver | None = None,
    progress: Progress = lambda _line: None,
) -> RunResult:
    policy = spec.policy
    wide = [s.name for s in policy.segments if len(s.inputs) != 1 or len(s.outputs) != 1]
    if wide:  # composite receipts version 1: a step commits to one input and one output (COMPOSITE_STEP_TENSORS)
        raise PipelineError(
            "PIPELINE_STEP_SHAPE", f"segments {wide} must have exactly one input and one output tensor to run"
        )
    prover = prover or InlineProver()
    manifest = parse_manifest(signed_payload(manifest_signed))
    manifest_sha256 = hashlib.sha256(manifest.raw).hexdigest()
    nonce = request_nonce or os.urandom(32).hex()
    values: dict[str, np.ndarray] = {name: np.asarray(v, dtype=np.float32) for name, v in inputs.items()}
    missing = [t for t in policy.pipeline_inputs if t not in values]
    if missing:
        raise PipelineError("PIPELINE_INPUT_INVALID", f"missing pipeline inputs {missing}")
    known: dict[str, dict[str, str]] = {name: {"sha256": _sha(name, values[name])} for name in policy.pipeline_inputs}
    steps: list[StepRecord] = []
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    for index, segment in enumerate(policy.segments):
        step_started = time.perf_counter()
        kinds = MODE_EVIDENCE[segment.mode]
        pieces: dict[str, _Evidence] = {}
        if "tee" in kinds:
            scale = _poseidon_scale(policy, segment.outputs, split)
            how = " (circuit semantics)" if segment.mode == MODE_TEE_ZK else ""
            progress(f"step {index} {segment.name}: tee (enclave{how}){' + Poseidon commitment' if scale else ''}")
            pieces["tee"] = _run_tee(enclave, segment.name, segment.inputs, values, policy, nonce, index, scale)
            if segment.mode == MODE_TEE_ZK:
                _check_executed_circuit(segment.name, pieces["tee"].params, split)
        if "zk" in kinds:
            pieces["zk"] = _run_zk(prover, segment.name, segment.inputs[0], segment.outputs[0], values, split, progress)
        if len(pieces) > 1:
            _check_same_tensors(segment.name, pieces["tee"], pieces["zk"])
        ins: dict[str, dict[str, str]] = {}
        outs: dict[str, dict[str, str]] = {}
        for piece in pieces.values():
            for name, commitment in piece.inputs.items():
                ins.setdefault(name, {}).update(commitment)
            for name, commitment in piece.outputs.items():
                outs.setdefault(name, {}).update(commitment)
        for name, commitment in (*ins.items(), *outs.items()):
            known.setdefault(name, {}).update(commitment)
        produced = pieces["tee"].values if "tee" in pieces else pieces["zk"].values
        values.update(produced)
        seconds[segment.name] = time.perf_counter() - step_started
        steps.append(
            StepRecord(
                segment=segment.name,
                mode=segment.mode,
                inputs={n: TensorCommitments(**c) for n, c in ins.items()},
                outputs={n: TensorCommitments(**c) for n, c in outs.items()},
                evidence={kind: piece.evidence for kind, piece in pieces.items()},
                cost={"seconds": round(seconds[segment.name], 6)},
            )
        )
    tensors = {
        name: (TensorCommitments(**known[name]), values.get(name) if visibility != VISIBILITY_PRIVATE else None)
        for name, visibility in policy.visibility.items()
    }
    receipt = build_composite(
        policy, request_nonce=nonce, manifest_sha256=manifest_sha256, tensors=tensors, steps=steps
    )
    return RunResult(
        receipt=receipt,
        outputs={name: values[name] for name in policy.pipeline_outputs},
        step_seconds=seconds,
        total_seconds=time.perf_counter() - started,
    )


def _run_tee(
    enclave: LocalEnclave | GatewayEnclave,
    segment: str,
    input_names: tuple[str, ...],
    values: Mapping[str, np.ndarray],
    policy: PipelinePolicy,
    nonce: str,
    index: int,
    scale: int | None,
) -> _Evidence:
    outputs, receipt, binding = enclave.infer(
        segment, {n: values[n] for n in input_names}, bytes.fromhex(step_nonce(policy, nonce, index)), scale
    )
    params = decode_statement(decode_receipt(receipt).statement).params

    def signed(name: str, value: np.ndarray) -> dict[str, str]:
        entry = {"sha256": _sha(name, value)}
        poseidon = params.get(f"poseidon/{name}")
        if isinstance(poseidon, str):
            entry["poseidon"] = poseidon
        return entry

    return _Evidence(
        evidence={
            "receipt": base64.b64encode(receipt).decode(),
            "attestation": base64.b64encode(binding).decode(),
        },
        inputs={n: signed(n, values[n]) for n in input_names},
        outputs={n: signed(n, v) for n, v in outputs.items()},
        values=outputs,
        params=params,
    )


def _check_executed_circuit(segment: str, params: Mapping[str, Any], split: SplitArtifacts) -> None:
    """Before spending a proof on a ``tee+zk`` step: the enclave must have executed this segment's
    compiled circuit (it signs which), else its output cannot be the proof's."""
    directory = split.zk_dirs.get(segment)
    if directory is None:
        raise PipelineError("PIPELINE_ZK_NOT_COMPILED", f"segment {segment!r} is tee+zk: run split with --compile-zk")
    expected = load_artifacts(directory).sha256_of("compiled_circuit")
    executor, circuit = params.get(EXECUTOR_PARAM), params.get(CIRCUIT_PARAM)
    if executor != EXECUTOR or circuit != expected:
        raise PipelineError(
            "PIPELINE_DUAL_MISMATCH",
            f"segment {segment!r} is tee+zk: expected the enclave to execute its circuit {expected[:16]}..., it signed "
            f"executor {executor!r}, circuit {circuit!r}; serve it with `trustdial serve --circuit "
            f"{segment}=ZKDIR` (automatic with --local)",
        )


def _run_zk(
    prover: StepProver,
    segment: str,
    input_name: str,
    output_name: str,
    values: Mapping[str, np.ndarray],
    split: SplitArtifacts,
    progress: Progress,
) -> _Evidence:
    directory = split.zk_dirs.get(segment)
    if directory is None:
        raise PipelineError("PIPELINE_ZK_NOT_COMPILED", f"segment {segment!r} is zk: run split with --compile-zk")
    array = np.ascontiguousarray(values[input_name], dtype="<f4")
    tensor = tensor_from_bytes("float32", tuple(array.shape), array.tobytes())
    progress(f"step {segment}: zk ({prover.label})")
    document = prover.prove(segment, directory, tensor)
    settings = json.loads((directory / "settings.json").read_text())
    layout = layout_from_settings(settings)
    try:
        instances = document["instances"][0]
        input_part, output_part = layout.input_part(instances), layout.output_part(instances)
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise PipelineError(
            "PIPELINE_PROOF_MALFORMED", f"segment {segment!r}: unreadable proof instances: {err}"
        ) from err
    sent = array.ravel().tolist()
    if layout.input_visibility == "hashed":
        matches = input_part == [tensor_poseidon(sent, layout.input_scale, as_f32=True)]
    else:
        matches = input_part == tensor_to_felts(sent, layout.input_scale, as_f32=True)
    if not matches:
        raise PipelineError(
            "PIPELINE_PROOF_INPUT_MISMATCH",
            f"segment {segment!r}: the proof's input instances are not the {input_name!r} this step sent",
        )
    input_commitment = (
        {"poseidon": input_part[0]} if layout.input_visibility == "hashed" else {"sha256": _sha(input_name, array)}
    )
    released: dict[str, np.ndarray] = {}
    if layout.output_visibility == "hashed":
        output_commitment = {"poseidon": output_part[0]}
    else:
        floats = np.asarray(felts_to_floats(output_part, layout.output_scale), dtype=np.float32)
        shape = _output_shape(split.segment_files[segment], output_name, floats.size)
        released[output_name] = floats.reshape(shape)
        output_commitment = {"sha256": _sha(output_name, released[output_name])}
    return _Evidence(
        evidence={"proof": document},
        inputs={input_name: input_commitment},
        outputs={output_name: output_commitment},
        values=released,
    )


def _check_same_tensors(segment: str, tee: _Evidence, zk: _Evidence) -> None:
    """Before writing a ``tee+zk`` step: the enclave and the proof must commit to the same tensors
    with a shared kind (what the verifier will demand)."""
    for side, signed, proven in (("input", tee.inputs, zk.inputs), ("output", tee.outputs, zk.outputs)):
        for name, commitment in proven.items():
            other = signed.get(name, {})
            shared = set(commitment) & set(other)
            if not shared or any(commitment[k] != other[k] for k in shared):
                raise PipelineError(
                    "PIPELINE_DUAL_MISMATCH",
                    f"segment {segment!r}: the enclave's {side} {name!r} {other} and the proof's {commitment} are not "
                    "the same tensor; a tee+zk segment must be served with its circuit's semantics "
                    "(`trustdial serve --circuit NAME=ZKDIR`, automatic with --local)",
                )


def _poseidon_scale(policy: PipelinePolicy, outputs: tuple[str, ...], split: SplitArtifacts) -> int | None:
    """The input scale of the zk segment that consumes a private output of this step, if any."""
    for consumer in policy.segments:
        for name in outputs:
            if (
                name in consumer.inputs
                and "zk" in MODE_EVIDENCE[consumer.mode]
                and policy.visibility[name] == "private"
            ):
                return load_artifacts(split.zk_dirs[consumer.name]).input_scale
    return None


def _output_shape(model: Path, name: str, size: int) -> tuple[int, ...]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    for output in session.get_outputs():
        if output.name == name:
            shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in output.shape)
            if int(np.prod(shape)) == size:
                return shape
    return (size,)


def enclave_for(split: SplitArtifacts, policy: PipelinePolicy, manifest_signed: bytes) -> LocalEnclave:
    manifest = parse_manifest(signed_payload(manifest_signed))
    pcrs = {PCR_INDEX[name]: bytes.fromhex(value) for name, value in manifest.pcrs.items() if value}
    tee_models = {s.name: split.segment_files[s.name] for s in policy.segments if "tee" in MODE_EVIDENCE[s.mode]}
    circuits = {}
    for segment in policy.segments:
        if segment.mode == MODE_TEE_ZK:
            if segment.name not in split.zk_dirs:
                raise PipelineError(
                    "PIPELINE_ZK_NOT_COMPILED", f"segment {segment.name!r} is tee+zk: run split with --compile-zk"
                )
            circuits[segment.name] = split.zk_dirs[segment.name]
    return LocalEnclave(tee_models, pcrs, circuits)
