"""ONNX models served by the enclave: one onnxruntime session per file, identified by the
SHA-256 of the file's bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from enclave_app.errors import RequestError

#: onnxruntime's type strings -> numpy dtype names used by the tensor encoding.
ORT_TYPES: Mapping[str, str] = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int16)": "int16",
    "tensor(uint16)": "uint16",
    "tensor(int32)": "int32",
    "tensor(uint32)": "uint32",
    "tensor(int64)": "int64",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}

#: What onnxruntime raises for a file it cannot load as a model (not ONNX, invalid graph, unsupported op).
ORT_LOAD_ERRORS: tuple[type[Exception], ...] = (
    ort.capi.onnxruntime_pybind11_state.Fail,
    ort.capi.onnxruntime_pybind11_state.InvalidArgument,
    ort.capi.onnxruntime_pybind11_state.InvalidProtobuf,
    ort.capi.onnxruntime_pybind11_state.InvalidGraph,
    ort.capi.onnxruntime_pybind11_state.NotImplemented,
    ort.capi.onnxruntime_pybind11_state.RuntimeException,
)


@contextmanager
def refused_by_onnxruntime() -> Iterator[None]:
    """onnxruntime's refusal of a run (bad values for the graph) as ``INFERENCE_FAILED``."""
    try:
        yield
    except (ort.capi.onnxruntime_pybind11_state.Fail, ort.capi.onnxruntime_pybind11_state.InvalidArgument) as err:
        raise RequestError("INFERENCE_FAILED", f"onnxruntime refused the inputs: {err}", status=422) from err


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int | str | None, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": [d if isinstance(d, int) else None for d in self.shape],
        }


@dataclass
class LoadedModel:
    name: str
    path: Path
    sha256: bytes
    session: ort.InferenceSession
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def kind(self) -> str:
        """``causal-lm`` for a decoder-only LM (input_ids -> logits), else ``tensor``."""
        names_in = [s.name for s in self.inputs]
        names_out = [s.name for s in self.outputs]
        if names_in == ["input_ids"] and names_out == ["logits"] and self.inputs[0].dtype == "int64":
            return "causal-lm"
        return "tensor"

    @property
    def vocab_size(self) -> int | None:
        """A causal LM's vocabulary size, when its logits' last dimension is static."""
        if self.kind != "causal-lm":
            return None
        last = self.outputs[0].shape[-1] if self.outputs[0].shape else None
        return last if isinstance(last, int) and last > 0 else None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sha256": self.sha256.hex(),
            "kind": self.kind,
            "inputs": [s.to_json() for s in self.inputs],
            "outputs": [s.to_json() for s in self.outputs],
        }

    def check_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Refuse missing, unknown, wrongly typed or wrongly shaped inputs before running."""
        expected = {s.name: s for s in self.inputs}
        unknown = sorted(set(feeds) - set(expected))
        if unknown:
            raise RequestError("UNKNOWN_INPUT", f"model {self.name!r} has inputs {sorted(expected)}, found {unknown}")
        missing = sorted(set(expected) - set(feeds))
        if missing:
            raise RequestError("MISSING_INPUT", f"model {self.name!r} needs inputs {missing}")
        for name, spec in expected.items():
            array = feeds[name]
            if array.dtype.name != spec.dtype:
                raise RequestError("BAD_DTYPE", f"input {name!r} must be {spec.dtype}, found {array.dtype.name}")
            if len(array.shape) != len(spec.shape) or any(
                isinstance(d, int) and d != a for d, a in zip(spec.shape, array.shape, strict=True)
            ):
                wanted = [d if isinstance(d, int) else None for d in spec.shape]
                raise RequestError("BAD_SHAPE", f"input {name!r} must have shape {wanted}, found {list(array.shape)}")

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.check_inputs(feeds)
        with refused_by_onnxruntime():
            values = self.session.run(None, dict(feeds))
        return {spec.name: np.ascontiguousarray(v) for spec, v in zip(self.outputs, values, strict=True)}

    def run_signed(self, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, int | str] | None]:
        """The outputs and any statement params this model signs with them (none for onnxruntime)."""
        return self.run(feeds), None


def _specs(args: list[Any]) -> tuple[TensorSpec, ...]:
    specs = []
    for arg in args:
        dtype = ORT_TYPES.get(arg.type)
        if dtype is None:
            raise ValueError(f"unsupported ONNX tensor type {arg.type} for {arg.name}")
        specs.append(TensorSpec(arg.name, dtype, tuple(arg.shape)))
    return tuple(specs)


def session_options(intra_op_threads: int = 1, *, spinning: bool = False) -> ort.SessionOptions:
    """One intra-op thread by default: a run executes on the calling thread and no pool thread spins
    between runs; with more, the pool's threads sleep between runs unless ``spinning``
    (docs/receipts.md §11 measures both and says how to size them)."""
    if intra_op_threads < 0:
        raise ValueError(f"expected intra-op threads >= 0 (0 = onnxruntime's default), found {intra_op_threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return options


def load_model(
    path: Path, name: str | None = None, *, intra_op_threads: int = 1, spinning: bool = False
) -> LoadedModel:
    """Load one ONNX file; its identity is the SHA-256 of the exact bytes onnxruntime loads."""
    return load_model_bytes(
        path.read_bytes(), name or path.stem, path, intra_op_threads=intra_op_threads, spinning=spinning
    )


def load_model_bytes(
    raw: bytes, name: str, path: Path, *, intra_op_threads: int = 1, spinning: bool = False
) -> LoadedModel:
    """Load an ONNX model from memory (``path`` names where it came from); identity = SHA-256 of ``raw``."""
    options = session_options(intra_op_threads, spinning=spinning)
    try:
        session = ort.InferenceSession(raw, options, providers=["CPUExecutionProvider"])
    except ORT_LOAD_ERRORS as err:  # onnxruntime's own exception types derive from Exception only
        raise ValueError(f"onnxruntime cannot load {path}: {err}") from err
    return LoadedModel(
        name=name,
        path=path,
        sha256=hashlib.sha256(raw).digest(),
        session=session,
        inputs=_specs(session.get_inputs()),
        outputs=_specs(session.get_outputs()),
    )


class ModelRegistry:
    """Models by name; names are unique."""

    def __init__(self, models: list[LoadedModel]) -> None:
        self._models: dict[str, LoadedModel] = {}
        for model in models:
            if model.name in self._models:
                raise ValueError(f"two models are named {model.name!r}; use NAME=PATH to rename one")
            self._models[model.name] = model

    @classmethod
    def from_specs(cls, specs: list[str], *, intra_op_threads: int = 1) -> ModelRegistry:
        """Each spec is ``PATH`` or ``NAME=PATH``."""
        loaded = []
        for spec in specs:
            name, _, path = spec.rpartition("=")
            loaded.append(load_model(Path(path), name or None, intra_op_threads=intra_op_threads))
        return cls(loaded)

    def get(self, name: str) -> LoadedModel:
        model = self._models.get(name)
        if model is None:
            raise RequestError("UNKNOWN_MODEL", f"no model named {name!r}; serving {sorted(self._models)}", status=404)
        return model

    def __iter__(self) -> Any:
        return iter(self._models.values())
