"""The enclave's operations, independent of transport: list models, attest, infer (language models:
``enclave_app.llm``, attached as ``llm``).

At start the service generates the receipt key and asks the NSM for the *binding document*:
an attestation document whose ``public_key`` is the receipt key (DER SPKI). Every statement
names that document's SHA-256, so one document covers every receipt of the enclave's life.
``attest(nonce)`` returns a fresh document for the caller's nonce alongside the binding one.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import numpy as np
from trustdial_verifier.unstable.tensors import Tensor

from enclave_app.errors import RequestError
from enclave_app.limits import MAX_NONCE
from enclave_app.models import ORT_TYPES, LoadedModel, ModelRegistry, refused_by_onnxruntime
from enclave_app.receipts.bound_model import BoundModel
from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.pipeline import ReceiptPipeline
from enclave_app.receipts.process_pipeline import ProcessReceiptPipeline, SealerProcessError

if TYPE_CHECKING:
    from enclave_app.llm.service import LlmService
    from enclave_app.nsm.interface import Nsm

BINDING_USER_DATA = b"trustdial/receipt-key/v1"
#: a bound model whose calibrated run (at start, on zeros) takes less than this (seconds) runs on the
#: event loop's thread: for a small model the hand-off to a worker thread and back costs more than the
#: run (docs/receipts.md §11)
INLINE_RUN_S = 0.001
#: where receipts are sealed: a sealer process fed through shared memory, with plain static-shape
#: ONNX models bound to its slots (docs/receipts.md §10), or a thread of this process
SEALERS = ("process", "thread", "loop")


def default_sealer() -> str:
    """``loop``, chosen by measurement (docs/performance.md, served path, second pass): against the
    sealer process it used less CPU per request in nearly every round at 16 and 1 connections and
    served more requests/s at 16 in most, one process fewer, and it needs no ring (any CPU).
    ``process`` and ``thread`` stay available (``--sealer``)."""
    return "loop"


def _copy_outcome(source: Future[bytes], waiter: asyncio.Future[bytes]) -> None:
    if waiter.done():  # its caller gave up (cancelled); the receipt was still sealed
        return
    error = source.exception()
    if error is not None:
        waiter.set_exception(error)
    else:
        waiter.set_result(source.result())


def loop_future(future: Future[bytes], loop: asyncio.AbstractEventLoop) -> asyncio.Future[bytes]:
    """An asyncio future of ``loop`` with ``future``'s outcome. Resolved in place when ``future``
    completes on the loop's own thread (the loop sealer: no self-pipe write, no extra wake-up and
    pass of the loop, unlike ``asyncio.wrap_future``), through ``call_soon_threadsafe`` otherwise.
    Cancelling the waiter leaves ``future`` alone: the pipeline still resolves it."""
    waiter: asyncio.Future[bytes] = loop.create_future()
    loop_thread = threading.get_ident()  # called on the loop's thread

    def done(source: Future[bytes]) -> None:
        if threading.get_ident() == loop_thread:
            _copy_outcome(source, waiter)
        else:
            loop.call_soon_threadsafe(_copy_outcome, source, waiter)

    future.add_done_callback(done)
    return waiter


def _nonce(value: Any) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, bytes) or len(value) > MAX_NONCE:
        raise RequestError("BAD_NONCE", f"nonce must be at most {MAX_NONCE} bytes")
    return value


def poseidon_params(outputs: dict[str, Any], scale: Any) -> dict[str, int | str]:
    """``{"poseidon_scale": scale, "poseidon/<name>": hex}``: ezkl's Poseidon hash of each output
    quantized at ``scale`` as float32 input, i.e. the hashed instance a ZK segment exposes."""
    if type(scale) is not int or not 0 <= scale <= 30:
        raise RequestError("BAD_PARAMS", "poseidon_scale must be an integer in 0..30")
    from trustdial_verifier.unstable.proof import tensor_poseidon

    params: dict[str, int | str] = {"poseidon_scale": scale}
    for name, array in outputs.items():
        params[f"poseidon/{name}"] = tensor_poseidon(
            np.asarray(array, dtype=np.float32).ravel().tolist(), scale, as_f32=True
        )
    return params


def _run_bound(
    bound: BoundModel, feeds: dict[str, np.ndarray], nonce: bytes
) -> tuple[list[np.ndarray], Future[bytes] | None]:
    with refused_by_onnxruntime():
        return bound.run(feeds, nonce)


def _static_tensor_model(model: Any) -> bool:
    return (
        type(model) is LoadedModel
        and model.kind == "tensor"
        and all(all(isinstance(d, int) and d >= 0 for d in arg.shape) for arg in model.session.get_inputs())
        and all(arg.type in ORT_TYPES for arg in model.session.get_inputs())
    )


def calibrated_run_s(model: LoadedModel, runs: int = 5) -> float:
    """The shortest wall time of ``runs`` runs on zero inputs, after one warm-up run (static shapes
    only); no receipt is involved. The shortest, because other load on the host only adds to a run."""
    feeds = {
        arg.name: np.zeros([int(d) for d in arg.shape], dtype=ORT_TYPES[arg.type]) for arg in model.session.get_inputs()
    }
    model.session.run(None, feeds)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        model.session.run(None, feeds)
        times.append(time.perf_counter() - started)
    return min(times)


class EnclaveService:
    def __init__(
        self,
        registry: ModelRegistry,
        nsm: Nsm,
        *,
        key_type: str = "p256",
        batch_size: int = 64,
        batch_wait: float = 0.002,
        clock: Callable[[], float] = time.time,
        sealer: str = "thread",
        loop: asyncio.AbstractEventLoop | None = None,
        inline_run_s: float = INLINE_RUN_S,
    ) -> None:
        if sealer not in SEALERS:
            raise ValueError(f"expected a sealer in {SEALERS}, found {sealer!r}")
        self.registry = registry
        self.nsm = nsm
        self.key = ReceiptKey.generate(key_type)
        self.public_key = self.key.public_key_der()
        self.binding_document = nsm.attest(public_key=self.public_key, user_data=BINDING_USER_DATA)
        self.attestation_digest = hashlib.sha256(self.binding_document).digest()
        self.sealer = sealer
        self.inline_run_s = inline_run_s
        #: bound models that run on the event loop's thread (their calibrated run is short)
        self.inline: set[str] = set()
        #: language-model bundles (enclave_app.llm), attached by ``trustdial serve --llm``
        self.llm: LlmService | None = None
        self.receipts: ReceiptPipeline | ProcessReceiptPipeline
        #: models whose runs go through the sealer ring's slots (process sealer only)
        self.bound: dict[str, BoundModel] = {}
        self.batch_wait = batch_wait
        self._seal_timer: asyncio.TimerHandle | None = None
        if sealer in ("thread", "loop"):
            self.receipts = ReceiptPipeline(
                self.key, self.attestation_digest, max_batch=batch_size, max_wait=batch_wait, clock=clock,
                threaded=sealer == "thread",
            )  # fmt: skip
            if sealer == "loop":
                self.inline.update(
                    m.name for m in registry if _static_tensor_model(m) and calibrated_run_s(m) < inline_run_s
                )
            return
        self.receipts = ProcessReceiptPipeline(
            self.key, self.attestation_digest, max_batch=batch_size, max_wait=batch_wait,
            clock=None if clock is time.time else clock,  # None: the sealer stamps the time
            loop=loop,
        )  # fmt: skip
        for model in registry:
            if type(model) is not LoadedModel or model.kind != "tensor":
                continue  # circuits sign params with their outputs; they go through submit
            try:
                self.bound[model.name] = BoundModel(self.receipts, model.session, model.sha256)
            except SealerProcessError as err:
                if err.code not in ("RECEIPT_NOT_BINDABLE", "RECEIPT_SLOT_OVERFLOW"):
                    raise  # dynamic shapes or big tensors: such a model runs, then submits
                continue
            if calibrated_run_s(model) < inline_run_s:
                self.inline.add(model.name)

    def models(self) -> list[dict[str, Any]]:
        return [model.describe() for model in self.registry]

    def attest(self, nonce: Any) -> dict[str, bytes]:
        fresh = _nonce(nonce)
        if not fresh:
            raise RequestError("BAD_NONCE", "attestation needs a nonce of 1..64 bytes")
        document = self.nsm.attest(nonce=fresh, public_key=self.public_key, user_data=BINDING_USER_DATA)
        return {"document": document, "binding": self.binding_document}

    async def infer(
        self, model_name: Any, inputs: dict[str, Tensor], nonce: Any, poseidon_scale: Any = None
    ) -> tuple[dict[str, Tensor], bytes]:
        """Run one inference. With ``poseidon_scale`` (hybrid pipelines, private boundaries) the
        receipt's params also sign ezkl's Poseidon hash of every output at that scale."""
        if not isinstance(model_name, str):
            raise RequestError("BAD_REQUEST", "model must be a string")
        model = self.registry.get(model_name)
        fresh = _nonce(nonce)
        feeds = {name: tensor.to_array() for name, tensor in inputs.items()}
        model.check_inputs(feeds)
        bound = self.bound.get(model.name) if poseidon_scale is None else None
        if bound is not None:
            if model.name in self.inline:  # a short run costs less here than the hand-off to a worker and back
                values, bound_pending = _run_bound(bound, feeds, fresh)
            else:
                values, bound_pending = await asyncio.get_running_loop().run_in_executor(
                    None, _run_bound, bound, feeds, fresh
                )
            outputs = {spec.name: Tensor.from_array(v) for spec, v in zip(model.outputs, values, strict=True)}
            if bound_pending is None:
                raise RuntimeError("a bound run returned no receipt future")
            return outputs, await asyncio.wrap_future(bound_pending)
        if model.name in self.inline and poseidon_scale is None:  # loop sealer: the run on this thread too
            arrays, executed = model.run_signed(feeds)
        else:
            arrays, executed = await asyncio.get_running_loop().run_in_executor(None, model.run_signed, feeds)
        params = None
        if poseidon_scale is not None:
            params = await asyncio.get_running_loop().run_in_executor(None, poseidon_params, arrays, poseidon_scale)
        if executed:
            params = {**(params or {}), **executed}
        pending = self.receipts.submit("infer", model.sha256, inputs, arrays, fresh, params)
        assert pending is not None
        self.seal_later()
        outputs = {name: Tensor.from_array(array) for name, array in arrays.items()}
        if isinstance(pending, asyncio.Future):  # the sealer process's futures are the loop's already
            return outputs, await pending
        return outputs, await loop_future(pending, asyncio.get_running_loop())

    def loop_idle(self, idle: bool) -> bool:
        """The event loop is about to block (``idle``) or runs again. The loop sealer seals its open
        batch now: every response of the loop's last passes shares one signature, and a lone one is
        sealed without waiting. Returns whether receipts were delivered (the loop then does not block)."""
        if idle and self.sealer == "loop" and isinstance(self.receipts, ReceiptPipeline):
            return self.receipts.seal_now()
        return False

    def seal_later(self) -> None:
        """Loop sealer: a batch still open after ``batch_wait`` (the loop never went idle) is sealed then."""
        if self.sealer == "loop" and self._seal_timer is None:
            self._seal_timer = asyncio.get_running_loop().call_later(self.batch_wait, self._seal_due)

    def _seal_due(self) -> None:
        self._seal_timer = None
        if isinstance(self.receipts, ReceiptPipeline):
            self.receipts.seal_now()

    def close(self) -> None:
        if self._seal_timer is not None:
            self._seal_timer.cancel()
        self.receipts.close()
