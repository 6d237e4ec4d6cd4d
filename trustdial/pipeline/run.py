"""``trustdial pipeline run --local``: one inference through a hybrid pipeline, producing one
composite receipt (docs/composite-receipts.md).

``tee`` segments run in an enclave service (here: the enclave app in-process with the simulated
NSM reporting the manifest's PCRs — development only); every step's receipt is bound to the
step nonce derived from the request nonce, the policy hash and the step position. ``zk``
segments are proven inline with the prover. A private boundary from a TEE step into a ZK step is
linked by the Poseidon hash the enclave signs (at the ZK circuit's input scale) and the proof's
hashed instance; a public one by the tensor's bytes, their SHA-256 and the proof's instances.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from verifier.composite.policy import MODE_EVIDENCE, MODE_TEE_ZK, VISIBILITY_PRIVATE, PipelinePolicy
from verifier.measurements import parse_manifest, signed_payload
from verifier.proof.artifacts import load_artifacts
from verifier.proof.instances import layout_from_settings
from verifier.proof.quantization import felts_to_floats
from verifier.proof.tensors import tensor_from_bytes
from verifier.receipts.model import decode_receipt, decode_statement
from verifier.tensors import Tensor, commit_tensors

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


def read_input(path: Path) -> dict[str, np.ndarray]:
    """Named tensors as the gateway takes them: ``{name: {dtype, shape, data: base64}}``."""
    try:
        document = json.loads(path.read_text())
        return {
            name: Tensor(item["dtype"], tuple(item["shape"]), base64.b64decode(item["data"], validate=True)).to_array()
            for name, item in document.items()
        }
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise PipelineError(
            "PIPELINE_INPUT_INVALID", f"{path}: expected {{name: {{dtype, shape, data}}}}: {err}"
        ) from err


def _sha(name: str, value: np.ndarray) -> str:
    return commit_tensors({name: Tensor.from_array(value)}).hex()


class LocalEnclave:
    """The enclave app in-process over the simulated NSM: development only (its documents chain to
    the simulator's root, which a verifier accepts only when passed explicitly)."""

    def __init__(self, models: Mapping[str, Path], pcrs: Mapping[int, bytes]) -> None:
        self.nsm = SimulatedNsm(pcrs)
        registry = ModelRegistry([load_model(path, name) for name, path in models.items()])
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


def run_pipeline(
    spec: PipelineSpec,
    split: SplitArtifacts,
    inputs: Mapping[str, np.ndarray],
    *,
    manifest_signed: bytes,
    enclave: LocalEnclave | GatewayEnclave,
    request_nonce: str | None = None,
    progress: Progress = lambda _line: None,
) -> RunResult:
    policy = spec.policy
    dual = [s.name for s in policy.segments if s.mode == MODE_TEE_ZK]
    if dual:
        raise PipelineError(
            "PIPELINE_MODE_UNSUPPORTED",
            f"segments {dual} are tee+zk: the enclave runs float onnxruntime while the circuit is fixed-point, so "
            "their outputs differ in the last bits; running the circuit's semantics in the enclave is not done yet",
        )
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
        evidence: dict[str, dict[str, Any]] = {}
        ins: dict[str, TensorCommitments] = {}
        outs: dict[str, TensorCommitments] = {}
        kinds = MODE_EVIDENCE[segment.mode]
        produced: dict[str, np.ndarray] = {}
        if "tee" in kinds:
            scale = _poseidon_scale(policy, segment.outputs, split)
            progress(f"step {index} {segment.name}: tee (enclave){' + Poseidon commitment' if scale else ''}")
            outputs, receipt, binding = enclave.infer(
                segment.name,
                {n: values[n] for n in segment.inputs},
                bytes.fromhex(step_nonce(policy, nonce, index)),
                scale,
            )
            params = decode_statement(decode_receipt(receipt).statement).params
            evidence["tee"] = {
                "receipt": base64.b64encode(receipt).decode(),
                "attestation": base64.b64encode(binding).decode(),
            }
            for name in segment.outputs:
                poseidon = params.get(f"poseidon/{name}")
                entry = {"sha256": _sha(name, outputs[name])}
                if isinstance(poseidon, str):
                    entry["poseidon"] = poseidon
                known.setdefault(name, {}).update(entry)
            ins.update({n: TensorCommitments(sha256=known[n]["sha256"]) for n in segment.inputs})
            outs.update({n: TensorCommitments(**known[n]) for n in segment.outputs})
            produced = outputs
        if "zk" in kinds:
            progress(f"step {index} {segment.name}: zk (proving inline)")
            proof, released = _prove(segment.name, segment.inputs[0], segment.outputs[0], values, split)
            evidence["zk"] = {"proof": proof["document"]}
            zin = {segment.inputs[0]: proof["input"]}
            zout = {segment.outputs[0]: proof["output"]}
            for name, commitment in (*zin.items(), *zout.items()):
                known.setdefault(name, {}).update(commitment)
            if "tee" not in kinds:
                ins = {n: TensorCommitments(**c) for n, c in zin.items()}
                outs = {n: TensorCommitments(**c) for n, c in zout.items()}
                produced = released

            if segment.outputs[0] in released and policy.visibility[segment.outputs[0]] != VISIBILITY_PRIVATE:
                known[segment.outputs[0]]["sha256"] = _sha(segment.outputs[0], released[segment.outputs[0]])
        values.update(produced)
        seconds[segment.name] = time.perf_counter() - step_started
        steps.append(
            StepRecord(
                segment=segment.name,
                mode=segment.mode,
                inputs=ins,
                outputs=outs,
                evidence=evidence,
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


def _prove(
    segment: str,
    input_name: str,
    output_name: str,
    values: Mapping[str, np.ndarray],
    split: SplitArtifacts,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    directory = split.zk_dirs.get(segment)
    if directory is None:
        raise PipelineError("PIPELINE_ZK_NOT_COMPILED", f"segment {segment!r} is zk: run split with --compile-zk")
    array = np.ascontiguousarray(values[input_name], dtype="<f4")
    tensor = tensor_from_bytes("float32", tuple(array.shape), array.tobytes())
    with tempfile.TemporaryDirectory(prefix="trustdial-run-") as scratch:
        path = prove(directory, tensor, Path(scratch) / "proof.json")
        document = json.loads(path.read_text())
    settings = json.loads((directory / "settings.json").read_text())
    layout = layout_from_settings(settings)
    instances = document["instances"][0]
    input_part, output_part = layout.input_part(instances), layout.output_part(instances)
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
    return {"document": document, "input": input_commitment, "output": output_commitment}, released


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
    return LocalEnclave(tee_models, pcrs)
