"""An onnxruntime session bound to the slots of a :class:`ProcessReceiptPipeline` ring, so that
a response's receipt costs the inference side almost nothing.

For every slot, the model's canonical tensor layout (``trustdial_verifier._internal.tensors`` §2: MAGIC, count,
then header and data per tensor, names in sorted order) is laid out once: the tensor headers
are written when the slot is first used for this model (again after another response used it),
and onnxruntime gets an ``IOBinding`` per slot that reads each input from, and writes each
output into, its data region. Per response the inference side then only

1. checks the inputs against the bound layout (dtype, shape; ``TensorError`` otherwise, before
   any slot is taken),
2. reserves the next slot and copies the inputs into it,
3. runs the session on that slot's binding,
4. copies the outputs out for the caller, writes the nonce and publishes the slot.

The sealer process hashes the slot's input and output regions, so the commitments are over the
same bytes onnxruntime read and wrote. Only models whose every input and output has a static
shape and a dtype of the tensor encoding can be bound (``RECEIPT_NOT_BINDABLE`` otherwise; such
models go through ``submit``). The first input's data region starts on a 64-byte boundary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from trustdial_verifier.unstable.tensors import DTYPE_SIZES, TensorError

from enclave_app.models import ORT_TYPES
from enclave_app.receipts.canonical_parts import canonical_headers
from enclave_app.receipts.process_pipeline import ProcessReceiptPipeline, check_nonce
from enclave_app.receipts.ring import BODY_AT, MAX_NONCE, OP_CODES, STATIC, STATIC_AT, SealerProcessError

#: name, dtype, static shape, data bytes
Spec = tuple[str, np.dtype, tuple[int, ...], int]


@dataclass(frozen=True)
class BoundTensor:
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    header_at: int  # offsets inside a slot
    data_at: int
    nbytes: int


class BoundModel:
    """``run(feeds, nonce)`` -> (outputs, receipt future): inference and receipt through one slot."""

    def __init__(self, pipeline: ProcessReceiptPipeline, session: ort.InferenceSession, model_sha256: bytes) -> None:
        if len(model_sha256) != 32:
            raise ValueError("expected a 32-byte model sha256")
        self.pipeline = pipeline
        self.session = session
        self.model = model_sha256
        ins = _canonical_order([_spec(arg) for arg in session.get_inputs()])
        outs = _canonical_order([_spec(arg) for arg in session.get_outputs()])
        if not ins or not outs:
            raise SealerProcessError("RECEIPT_NOT_BINDABLE", "expected a model with inputs and outputs")
        in_headers = _canonical_headers(ins)
        out_headers = _canonical_headers(outs)
        in_size = sum(len(h) for h in in_headers) + sum(n for _, _, _, n in ins)
        out_size = sum(len(h) for h in out_headers) + sum(n for _, _, _, n in outs)
        # the body starts where the first input's data lands on a 64-byte boundary
        first = BODY_AT + len(in_headers[0])
        start = BODY_AT + (-first % 64)
        if start + in_size + out_size > pipeline.slot_size:
            raise SealerProcessError(
                "RECEIPT_SLOT_OVERFLOW",
                f"expected tensors that fit a {pipeline.slot_size}-byte slot, found {in_size + out_size} bytes",
            )
        self.inputs = _place(ins, in_headers, start)
        self.outputs = _place(outs, out_headers, start + in_size)
        self._static = (in_size, out_size, start)
        self._by_name = {t.name: t for t in self.inputs}
        self._order = [arg.name for arg in session.get_inputs()]
        self._out_order = [arg.name for arg in session.get_outputs()]
        self._headers = [(t.header_at, h) for t, h in zip(self.inputs, in_headers, strict=True)] + [
            (t.header_at, h) for t, h in zip(self.outputs, out_headers, strict=True)
        ]
        #: per slot: input views (input order), its binding, output views (output order)
        self._slot: list[tuple[list[np.ndarray], ort.IOBinding, list[np.ndarray]]] = []
        self._slots = pipeline.slots
        self._owners = pipeline.owners
        self._run = session.run_with_iobinding
        buf = pipeline.buf
        by_out = {t.name: t for t in self.outputs}
        for index in range(pipeline.slots):
            base = pipeline.slot_offset(index + 1)
            in_views = [self._view(buf, base, self._by_name[name]) for name in self._order]
            out_views = [self._view(buf, base, by_out[name]) for name in self._out_order]
            binding = session.io_binding()
            for name, view in zip(self._order, in_views, strict=True):
                binding.bind_cpu_input(name, view)
            for name, view in zip(self._out_order, out_views, strict=True):
                binding.bind_output(name, "cpu", 0, view.dtype, list(view.shape), view.ctypes.data)
            self._slot.append((in_views, binding, out_views))
        self._checks = [(name, self._by_name[name].dtype, self._by_name[name].shape) for name in self._order]
        # one input that is not bool (bool bytes must also be checked to be 0 or 1): checked inline
        self._single = self._checks[0] if len(self._checks) == 1 and self._checks[0][1] != np.bool_ else None
        pipeline.on_close(self._release)

    @staticmethod
    def _view(buf: memoryview, base: int, tensor: BoundTensor) -> np.ndarray:
        return np.ndarray(tensor.shape, tensor.dtype, buffer=buf, offset=base + tensor.data_at)

    def _own(self, index: int) -> None:
        """Write this model's static header and tensor headers into slot ``index``."""
        buf = self.pipeline.buf
        base = self.pipeline.slot_offset(index + 1)
        in_size, out_size, start = self._static
        STATIC.pack_into(buf, base + STATIC_AT, 0, in_size, out_size, 0, OP_CODES["infer"], 0, start, self.model)
        for at, header in self._headers:
            buf[base + at : base + at + len(header)] = header
        self.pipeline.owners[index] = self

    def check(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The feeds in input order, each exactly the bound dtype and shape (else ``TensorError``)."""
        if len(feeds) == len(self._checks):
            arrays = []
            for name, dtype, shape in self._checks:
                array = feeds.get(name)
                if type(array) is not np.ndarray or array.dtype != dtype or array.shape != shape:
                    break
                if dtype == np.bool_ and array.view(np.uint8).max(initial=0) > 1:
                    raise TensorError("TENSOR_BOOL", f"expected the bytes of bool input {name!r} to be 0 or 1")
                arrays.append(array)
            else:
                return arrays
        wanted = ", ".join(f"{name!r} {dtype} {list(shape)}" for name, dtype, shape in self._checks)
        found = ", ".join(
            f"{name!r} {getattr(value, 'dtype', type(value).__name__)} {list(getattr(value, 'shape', ()))}"
            for name, value in feeds.items()
        )
        raise TensorError("TENSOR_LAYOUT", f"expected inputs {wanted}, found {found}")

    def run(
        self, feeds: Mapping[str, np.ndarray], nonce: bytes, *, want_future: bool = True, copy: bool = True
    ) -> tuple[list[np.ndarray], Future[bytes] | None]:
        """Outputs (in the session's output order) and the receipt's future (or None).

        With ``copy=False`` the outputs are views of the slot, valid until the ring comes round
        to it again (``slots`` responses later): for callers that encode them at once."""
        single = self._single
        arrays: Sequence[np.ndarray] | None = None
        if single is not None and len(feeds) == 1:  # the common case, checked inline
            array = feeds.get(single[0])
            # dtype identity first (numpy's == on dtypes costs more than the rest of the check)
            on_layout = (
                type(array) is np.ndarray
                and (array.dtype is single[1] or array.dtype == single[1])
                and array.shape == single[2]
            )
            if not on_layout:
                arrays = self.check(feeds)  # raises the typed error
        else:
            arrays = self.check(feeds)
        if len(nonce) > MAX_NONCE:
            check_nonce(nonce)
        pipeline = self.pipeline
        seq = pipeline.reserve()
        index = (seq - 1) % self._slots
        in_views, binding, out_views = self._slot[index]
        try:
            if self._owners[index] is not self:
                self._own(index)
            if arrays is None:
                in_views[0][...] = array
            else:
                for view, item in zip(in_views, arrays):  # noqa: B905 (lengths checked)
                    view[...] = item
            self._run(binding)
            outputs = [view.copy() for view in out_views] if copy else out_views
        except BaseException:
            pipeline.publish_void(seq)
            raise
        return outputs, pipeline.publish(seq, nonce, want_future)

    def _release(self) -> None:
        self._slot.clear()


def _spec(arg: ort.NodeArg) -> Spec:
    dtype = ORT_TYPES.get(arg.type)
    if dtype is None or not all(isinstance(d, int) and d >= 0 for d in arg.shape):
        raise SealerProcessError(
            "RECEIPT_NOT_BINDABLE",
            f"expected static shapes and tensor dtypes, found {arg.name!r} {arg.type} {arg.shape}",
        )
    shape = tuple(int(d) for d in arg.shape)
    little = np.dtype(np.dtype(dtype).newbyteorder("<").str)  # numpy's shared instance where native
    return arg.name, little, shape, DTYPE_SIZES[dtype] * int(np.prod(shape, dtype=np.int64))


def _canonical_order(specs: list[Spec]) -> list[Spec]:
    return sorted(specs, key=lambda spec: spec[0].encode("utf-8"))


def _canonical_headers(specs: list[Spec]) -> list[bytes]:
    return canonical_headers([(name, dtype.name, shape) for name, dtype, shape, _ in specs])


def _place(specs: list[Spec], headers: list[bytes], start: int) -> tuple[BoundTensor, ...]:
    placed, at = [], start
    for (name, dtype, shape, nbytes), header in zip(specs, headers, strict=True):
        placed.append(BoundTensor(name, dtype, shape, at, at + len(header), nbytes))
        at += len(header) + nbytes
    return tuple(placed)


__all__ = ["BoundModel", "BoundTensor"]
