"""Completions inside the enclave: bundles loaded into onnxruntime-genai, tokens streamed as produced, every
chunk and every completion sealed through the receipt pipeline (docs/llm-receipts.md).

``complete`` (frame op ``complete``) parses the request again (the host is not trusted), templates and tokenizes,
draws the seed when the caller gave none, resolves ``max_tokens`` against the context, and decodes. For a stream,
each chunk's statement is submitted as the chunk is produced, and the chunk goes out (frame ``event: chunk``) when
its receipt is back; generation does not wait for it, except for the first token's (it goes out before the second
token is decoded, so the time to the first token is the engine's plus one seal). The completion's statement is
submitted at the end and travels in the last frame (``event: end``).

Decoding runs on the event loop's thread, one token per pass of the loop (docs/performance.md, "LLM serving"):
onnxruntime-genai holds the GIL for a whole ``generate_next_token``, so a decoding thread would not run beside
the loop anyway, and handing every token from it to the loop and its receipt back made both threads wait for the
GIL (up to the 5 ms switch interval, more on a busy machine) once or twice per token. Here a token costs no
hand-off: the step, the chain hash, the submit (a copy of a few hundred bytes; the sealer process signs on its own
core), then the frames whose receipts are back are sent and the loop runs one pass (other requests, incoming
receipts, the loop sealer's deadline). Statements are submitted on the loop's thread, as every sealer needs: the
loop sealer (``--sealer loop``) seals on that thread and the process sealer's futures belong to the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustdial_verifier.errors import VerificationError
from trustdial_verifier.unstable.llm import (
    DEFAULT_MAX_TOKENS,
    MAX_SEED,
    OP_CHUNK,
    OP_COMPLETION,
    BundleError,
    Endpoint,
    Engine,
    RequestRefused,
    chain_next,
    chain_start,
    chunk_inputs,
    chunk_outputs,
    completion_inputs,
    completion_outputs,
    completion_params,
    parse_request,
    resolve,
    verify_bundle,
)
from trustdial_verifier.unstable.tensors import commit_tensors

from enclave_app.errors import RequestError
from enclave_app.limits import MAX_NONCE

log = logging.getLogger("trustdial.llm")
Send = Callable[[dict[str, Any]], Awaitable[None]]
#: what the decoding thread hands over with a frame: a statement to submit (op, model, inputs, outputs, nonce,
#: params), or None for a frame without a receipt
Statement = tuple[str, bytes, Mapping[str, Any], Mapping[str, Any], bytes, Mapping[str, int | str]] | None
#: one frame of a completion as the decoder produces it: its kind (start / token / end), the frame, its statement
Produced = tuple[str, dict[str, Any], Statement]


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


def load_llm(spec: str, *, threads: int = 0, spinning: bool = False) -> LlmModel:
    """``NAME=BUNDLE_DIR`` (or ``BUNDLE_DIR``): every file checked against bundle.json before loading."""
    name, _, path = spec.rpartition("=")
    directory = Path(path)
    try:
        manifest = verify_bundle(directory)
    except BundleError as err:
        raise ValueError(f"bundle {directory}: [{err.code}] {err.reason}") from err
    engine = Engine(directory, threads=threads, spinning=spinning)
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
        self._slots = asyncio.Semaphore(max_concurrent)  # completions decoding at once (they take turns)

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
        async with self._slots:
            await self._stream(model, parsed, nonce, send)

    async def _stream(self, model: LlmModel, parsed: Any, nonce: bytes, send: Send) -> None:
        """Decode on this (the loop's) thread: submit each frame's statement as the frame is produced, send
        frames in order once their receipts exist, yield to the loop after every token (module docstring)."""
        outbox: deque[tuple[dict[str, Any], Any]] = deque()  # frames produced, each with its receipt's future
        frames = self._decode(model, parsed, nonce)
        first_token = True
        while True:
            try:
                kind, frame, statement = next(frames)  # the engine's step: holds the GIL, as on any thread
            except StopIteration:
                break
            except RequestRefused as err:
                raise _refused(err) from err
            except (RequestError, VerificationError):
                raise
            except Exception as err:  # the engine failed: the caller gets an error, the server keeps serving
                log.exception("completion failed")
                raise RequestError("INFERENCE_FAILED", f"the engine failed: {type(err).__name__}", 500) from err
            pending = None
            if statement is not None:
                pending = self.receipts.submit(*statement)  # RuntimeError / ValueError: sealer gone, refused
                if self._after_submit is not None:
                    self._after_submit()
            outbox.append((frame, pending))
            if kind == "end":
                await _send_ready(outbox, send, wait=True)
                return
            wait = first_token and kind == "token"  # the first token goes out before the second is decoded
            first_token = first_token and not wait
            await _send_ready(outbox, send, wait=wait)
            if not wait:
                await asyncio.sleep(0)  # one pass of the loop: receipts come in, other requests run

    def _decode(self, model: LlmModel, parsed: Any, nonce: bytes) -> Iterator[Produced]:
        """The frames of one completion with their statements, each yielded as soon as it exists."""
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
            yield "start", {**start, "index": 0}, statement
        else:
            yield "start", start, None
        ids: list[int] = []
        text: list[str] = []
        finish = "length"
        for step in engine.steps(record, prompt_ids):
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
                yield "token", frame, statement
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
        yield "end", end, final


async def _send_ready(outbox: deque[tuple[dict[str, Any], Any]], send: Send, *, wait: bool) -> None:
    """Send, in order, the frames whose receipts exist (or that have none); with ``wait``, all of them."""
    while outbox:
        frame, pending = outbox[0]
        if pending is not None:
            if not pending.done():
                if not wait:
                    return
                if isinstance(pending, Future):  # the thread sealer's; the others' belong to the loop
                    await asyncio.wrap_future(pending)
                else:
                    await pending
            frame = {**frame, "receipt": pending.result()}
        outbox.popleft()
        await send(frame)
