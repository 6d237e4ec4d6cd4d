"""A segment served with its zk circuit's semantics, for ``tee+zk`` pipeline steps.

The enclave normally runs float onnxruntime; the circuit computes in fixed point, so the two
outputs differ in the last bits and a receipt and a proof over "the same" step would commit to
different tensors. A :class:`CircuitModel` runs ezkl's witness generation on the segment's
compiled circuit instead: its outputs are exactly the circuit's outputs (dequantized to float32),
which is what the proof of the same input exposes. Its identity stays the ONNX file's SHA-256
(what the manifest pins for the segment); the receipt's params also sign which circuit ran
(``circuit_sha256``) and ezkl's Poseidon hash of the quantized input and output, so private
boundaries can be matched against the proof's hashed instances.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from trustdial_verifier.unstable.proof import (
    check_file_hashes,
    ezkl_calls,
    felts_to_floats,
    load_artifacts,
    tensor_poseidon,
)

from enclave_app.errors import RequestError
from enclave_app.models import LoadedModel, load_model

EXECUTOR = "ezkl-circuit"
EXECUTOR_PARAM = "executor"
CIRCUIT_PARAM = "circuit_sha256"
POSEIDON_PREFIX = "poseidon/"


@dataclass
class CircuitModel(LoadedModel):
    circuit: Path
    circuit_sha256: str
    input_scale: int
    output_scale: int

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.check_inputs(feeds)
        ((name, array),) = feeds.items()
        values = np.ascontiguousarray(array, dtype=np.float32).ravel().tolist()
        ezkl = ezkl_calls.load_ezkl()
        with tempfile.TemporaryDirectory(prefix="trustdial-circuit-") as scratch:
            data, witness = Path(scratch) / "input.json", Path(scratch) / "witness.json"
            data.write_text(json.dumps({"input_data": [values]}), encoding="utf-8")
            try:
                ezkl.gen_witness(str(data), str(self.circuit), str(witness))
            except RuntimeError as err:
                raise RequestError("INFERENCE_FAILED", f"circuit {name!r}: {err}", status=422) from err
            document = json.loads(witness.read_text(encoding="utf-8"))
        (felts,) = document["outputs"]
        (spec,) = self.outputs
        floats = np.asarray(felts_to_floats(felts, self.output_scale), dtype=np.float32)
        shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in spec.shape)
        if int(np.prod(shape)) != floats.size:
            shape = (floats.size,)
        return {spec.name: floats.reshape(shape)}

    def run_signed(self, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, int | str] | None]:
        """The circuit's outputs and what the receipt signs besides the tensors: the circuit that ran
        and Poseidon commitments of its quantized input (input scale) and output (output scale)."""
        outputs = self.run(feeds)
        params: dict[str, int | str] = {EXECUTOR_PARAM: EXECUTOR, CIRCUIT_PARAM: self.circuit_sha256}
        for name, array in feeds.items():
            values = np.asarray(array, dtype=np.float32).ravel().tolist()
            params[POSEIDON_PREFIX + name] = tensor_poseidon(values, self.input_scale, as_f32=True)
        for name, array in outputs.items():
            values = np.asarray(array, dtype=np.float64).ravel().tolist()
            params[POSEIDON_PREFIX + name] = tensor_poseidon(values, self.output_scale, as_f32=False)
        return outputs, params


def load_circuit_model(onnx: Path, artifacts_dir: Path, name: str | None = None) -> CircuitModel:
    """The segment ``onnx`` (its identity) executed as the compiled circuit in ``artifacts_dir``."""
    base = load_model(onnx, name)
    if len(base.inputs) != 1 or len(base.outputs) != 1:
        raise ValueError(f"a circuit-executed segment has one input and one output, {onnx} has more")
    artifacts = load_artifacts(artifacts_dir)
    circuit = check_file_hashes(artifacts_dir, artifacts, ("settings", "compiled_circuit"))["compiled_circuit"]
    return CircuitModel(
        name=base.name,
        path=base.path,
        sha256=base.sha256,
        session=base.session,
        inputs=base.inputs,
        outputs=base.outputs,
        circuit=circuit,
        circuit_sha256=hashlib.sha256(circuit.read_bytes()).hexdigest(),
        input_scale=artifacts.input_scale,
        output_scale=artifacts.output_scale,
    )
