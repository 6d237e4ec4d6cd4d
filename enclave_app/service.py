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
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import numpy as np
from verifier.tensors import Tensor

from enclave_app.errors import RequestError
from enclave_app.limits import MAX_NONCE
from enclave_app.models import LoadedModel, ModelRegistry, refused_by_onnxruntime
from enclave_app.receipts.bound_model import BoundModel
from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.pipeline import ReceiptPipeline
from enclave_app.receipts.process_pipeline import ProcessReceiptPipeline, SealerProcessError
from enclave_app.receipts.ring import ring_supported

if TYPE_CHECKING:
    from enclave_app.llm.service import LlmService
    from enclave_app.nsm.interface import Nsm

BINDING_USER_DATA = b"trustdial/receipt-key/v1"
#: where receipts are sealed: a sealer process fed through shared memory, with plain static-shape
#: ONNX models bound to its slots (docs/receipts.md §10), or a thread of this process
SEALERS = ("process", "thread")


def default_sealer() -> str:
    """``process`` where the ring's publish is sound (x86-64), else ``thread``."""
    return "process" if ring_supported() else "thread"


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
    from verifier.proof.quantization import tensor_poseidon

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
        #: language-model bundles (enclave_app.llm), attached by ``trustdial serve --llm``
        self.llm: LlmService | None = None
        self.receipts: ReceiptPipeline | ProcessReceiptPipeline
        #: models whose runs go through the sealer ring's slots (process sealer only)
        self.bound: dict[str, BoundModel] = {}
        if sealer == "thread":
            self.receipts = ReceiptPipeline(
                self.key, self.attestation_digest, max_batch=batch_size, max_wait=batch_wait, clock=clock
            )
            return
        self.receipts = ProcessReceiptPipeline(
            self.key, self.attestation_digest, max_batch=batch_size, max_wait=batch_wait,
            clock=None if clock is time.time else clock,  # None: the sealer stamps the time
        )  # fmt: skip
        for model in registry:
            if type(model) is not LoadedModel or model.kind != "tensor":
                continue  # circuits sign params with their outputs; they go through submit
            try:
                self.bound[model.name] = BoundModel(self.receipts, model.session, model.sha256)
            except SealerProcessError as err:
                if err.code not in ("RECEIPT_NOT_BINDABLE", "RECEIPT_SLOT_OVERFLOW"):
                    raise  # dynamic shapes or big tensors: such a model runs, then submits

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
            values, bound_pending = await asyncio.get_running_loop().run_in_executor(
                None, _run_bound, bound, feeds, fresh
            )
            outputs = {spec.name: Tensor.from_array(v) for spec, v in zip(model.outputs, values, strict=True)}
            if bound_pending is None:
                raise RuntimeError("a bound run returned no receipt future")
            return outputs, await asyncio.wrap_future(bound_pending)
        arrays, executed = await asyncio.get_running_loop().run_in_executor(None, model.run_signed, feeds)
        params = None
        if poseidon_scale is not None:
            params = await asyncio.get_running_loop().run_in_executor(None, poseidon_params, arrays, poseidon_scale)
        if executed:
            params = {**(params or {}), **executed}
        pending = self.receipts.submit("infer", model.sha256, inputs, arrays, fresh, params)
        assert pending is not None
        outputs = {name: Tensor.from_array(array) for name, array in arrays.items()}
        return outputs, await asyncio.wrap_future(pending)

    def close(self) -> None:
        self.receipts.close()
