"""Completions inside the enclave: bundles loaded into onnxruntime-genai, tokens streamed as produced, every
chunk and every completion sealed through the receipt pipeline (docs/llm-receipts.md).

``complete`` (frame op ``complete``) parses the request again (the host is not trusted), templates and tokenizes,
draws the seed when the caller gave none, resolves ``max_tokens`` against the context, and runs the decoding loop
on a worker thread. For a stream, each chunk's statement is submitted as the chunk is produced, and the chunk goes
out (frame ``event: chunk``) when its receipt is back; generation does not wait for it. The completion's
statement is submitted at the end and travels in the last frame (``event: end``).

Statements are submitted on the event loop's thread (the decoding thread hands each one over with the token it
belongs to): the loop sealer (``--sealer loop``) seals on that thread and its pipeline is not shared with
others, and the process sealer's futures belong to the loop. Submitting is a copy of a few hundred bytes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustdial_verifier._internal.llm.bundle import BundleError, verify_bundle
from trustdial_verifier._internal.llm.engine import Engine
from trustdial_verifier._internal.llm.request import (
    DEFAULT_MAX_TOKENS,
    MAX_SEED,
    Endpoint,
    RequestRefused,
    parse_request,
    resolve,
)
from trustdial_verifier._internal.llm.statements import (
    OP_CHUNK,
    OP_COMPLETION,
    chain_next,
    chain_start,
    chunk_inputs,
    chunk_outputs,
    completion_inputs,
    completion_outputs,
    completion_params,
)
from trustdial_verifier._internal.tensors import commit_tensors
from trustdial_verifier.errors import VerificationError

from enclave_app.errors import RequestError
from enclave_app.limits import MAX_NONCE

log = logging.getLogger("trustdial.llm")
Send = Callable[[dict[str, Any]], Awaitable[None]]
Emit = Callable[[str, Any], None]
#: what the decoding thread hands over with a frame: a statement to submit (op, model, inputs, outputs, nonce,
#: params), or None for a frame without a receipt
Statement = tuple[str, bytes, Mapping[str, Any], Mapping[str, Any], bytes, Mapping[str, int | str]] | None


@dataclass
class LlmModel:
    name: str
    directory: Path
    digest: bytes
    engine: Engine

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "llm",
            "bundle_digest": self.digest.hex(),
            "context_length": self.engine.context_length,
        }


def load_llm(spec: str, *, threads: int = 0) -> LlmModel:
    """``NAME=BUNDLE_DIR`` (or ``BUNDLE_DIR``): every file checked against bundle.json before loading."""
    name, _, path = spec.rpartition("=")
    directory = Path(path)
    try:
        manifest = verify_bundle(directory)
    except BundleError as err:
        raise ValueError(f"bundle {directory}: [{err.code}] {err.reason}") from err
    engine = Engine(directory, threads=threads)
    return LlmModel(name or manifest.meta.get("name") or directory.name, directory, manifest.digest(), engine)


def _refused(err: RequestRefused) -> RequestError:
    return RequestError(err.code, err.reason, err.status, param=err.param)


def _nonce(value: Any) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, bytes) or len(value) > MAX_NONCE:
        raise RequestError("BAD_NONCE", f"nonce must be at most {MAX_NONCE} bytes")
    return value


class LlmService:
    def __init__(
        self,
        models: list[LlmModel],
        receipts: Any,
        *,
        max_concurrent: int = 2,
        after_submit: Callable[[], None] | None = None,
    ) -> None:
        self.models: dict[str, LlmModel] = {}
        for model in models:
            if model.name in self.models:
                raise ValueError(f"two LLM bundles are named {model.name!r}")
            self.models[model.name] = model
        self.receipts = receipts
        #: called on the loop after each submit (the loop sealer's deadline: ``EnclaveService.seal_later``)
        self._after_submit = after_submit
        self._slots = threading.BoundedSemaphore(max_concurrent)

    def describe(self) -> list[dict[str, Any]]:
        return [model.describe() for model in self.models.values()]

    async def complete(self, message: dict[str, Any], send: Send) -> None:
        endpoint_name = message.get("endpoint")
        try:
            endpoint = Endpoint(str(endpoint_name))
        except ValueError as err:
            raise RequestError("BAD_REQUEST", f"endpoint must be one of {[e.value for e in Endpoint]}") from err
        try:
            parsed = parse_request(endpoint, message.get("body"))
        except RequestRefused as err:
            raise _refused(err) from err
        model = self.models.get(parsed.model)
        if model is None:
            raise RequestError(
                "model_not_found", f"no model named {parsed.model!r}; serving {sorted(self.models)}", 404, param="model"
            )
        nonce = _nonce(message.get("nonce"))
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        failed: list[BaseException] = []

        def submitted(kind: str, value: Any) -> None:
            """On the loop: submit the frame's statement (if any), queue the frame with its receipt's future."""
            if failed:
                return  # the request already ended with an error: nothing more is sealed for it
            if kind != "error":
                frame, statement = value
                pending = None
                if statement is not None:
                    try:
                        pending = self.receipts.submit(*statement)
                    except (RuntimeError, ValueError) as err:  # sealer gone or closed (SealerProcessError), refused
                        kind, value = "error", err
                    else:
                        if self._after_submit is not None:
                            self._after_submit()
                if kind != "error":
                    value = (frame, pending)
            if kind == "error":
                failed.append(value)
            queue.put_nowait((kind, value))

        def emit(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(submitted, kind, value)

        cancelled = threading.Event()
        worker = threading.Thread(
            target=self._run, args=(model, parsed, nonce, emit, cancelled), name="llm-decode", daemon=True
        )
        worker.start()
        try:
            while True:
                kind, value = await queue.get()
                if kind == "error":
                    raise value
                frame, pending = value
                if pending is not None:
                    receipt = await asyncio.wrap_future(pending)
                    frame = {**frame, "receipt": receipt}
                await send(frame)
                if kind == "end":
                    return
        finally:
            cancelled.set()

    def _run(self, model: LlmModel, parsed: Any, nonce: bytes, emit: Emit, cancelled: threading.Event) -> None:
        try:
            with self._slots:
                self._decode(model, parsed, nonce, emit, cancelled)
        except RequestRefused as err:
            emit("error", _refused(err))
        except (RequestError, VerificationError) as err:
            emit("error", err)
        except Exception as err:  # the engine failed: the caller gets an error frame, the server keeps serving
            log.exception("completion failed")
            emit("error", RequestError("INFERENCE_FAILED", f"the engine failed: {type(err).__name__}", 500))

    def _decode(self, model: LlmModel, parsed: Any, nonce: bytes, emit: Emit, cancelled: threading.Event) -> None:
        engine = model.engine
        prompt_ids = engine.prompt_ids(parsed)
        max_tokens = engine.resolve_max_tokens(parsed.max_tokens, len(prompt_ids), DEFAULT_MAX_TOKENS)
        seed = int.from_bytes(os.urandom(4), "big") & MAX_SEED
        record = resolve(parsed, max_tokens=max_tokens, seed=seed)
        raw_record = record.encode()
        inputs = completion_inputs(raw_record, prompt_ids)
        digest = model.digest
        start = {
            "event": "start",
            "request": raw_record,
            "prompt_ids": prompt_ids,
            "seed": record.seed,
            "bundle_digest": digest,
        }
        chunks = 0
        if parsed.stream:
            input_digest = commit_tensors(inputs)
            chain = chain_start(input_digest)
            in_chunk = chunk_inputs(input_digest)
            statement: Statement = (OP_CHUNK, digest, in_chunk, chunk_outputs(chain), nonce, {"index": 0})
            emit("chunk", ({**start, "index": 0}, statement))
        else:
            emit("chunk", (start, None))
        ids: list[int] = []
        text: list[str] = []
        finish = "length"
        for step in engine.steps(record, prompt_ids):
            if cancelled.is_set():
                return  # the caller went away: nothing more to seal
            ids.append(step.token_id)
            text.append(step.text)
            reason = step.finish_reason.value if step.finish_reason is not None else None
            if reason is not None:
                finish = reason
            if parsed.stream:
                chunks += 1
                chain = chain_next(chain, chunks, [step.token_id], step.text, reason)
                statement = (OP_CHUNK, digest, in_chunk, chunk_outputs(chain), nonce, {"index": chunks})
                frame = {
                    "event": "chunk",
                    "index": chunks,
                    "token_ids": [step.token_id],
                    "text": step.text,
                    "finish_reason": reason,
                }
                emit("chunk", (frame, statement))
        full_text = "".join(text)
        params = completion_params(finish, len(prompt_ids), len(ids), record.seed, chunks)
        final: Statement = (OP_COMPLETION, digest, inputs, completion_outputs(ids, full_text), nonce, params)
        end = {
            "event": "end",
            "completion_ids": ids,
            "text": full_text,
            "finish_reason": finish,
            "usage": {"prompt_tokens": len(prompt_ids), "completion_tokens": len(ids)},
            "chunks": chunks,
        }
        emit("end", (end, final))
