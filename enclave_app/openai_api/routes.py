"""OpenAI-compatible routes on the gateway: ``POST /v1/chat/completions``, ``POST /v1/completions`` (plain and
``stream: true`` as server-sent events) and the OpenAI model list (``object: list, data``) merged into
``GET /v1/models``.

The gateway relays: the enclave parses, templates, generates and signs. A stream's chunks are relayed as the
enclave sends them, each with its receipt (``trustdial`` field); the last event (``choices: []``, with ``usage``
when ``stream_options.include_usage``) carries the completion's receipt, then ``data: [DONE]``. Errors use
OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``; an error after the stream started is one
event with that body (the ``openai`` client raises it). The caller's nonce for the receipts travels in the
``X-Trustdial-Nonce`` header (hex, at most 64 bytes), so the body stays an OpenAI body.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from verifier.llm.request import Endpoint, RequestRefused, parse_request

from enclave_app.enclave_link import EnclaveLink
from enclave_app.errors import RequestError
from enclave_app.limits import MAX_NONCE
from enclave_app.openai_api.schemas import (
    ChatCompletion,
    ChatCompletionRequest,
    CompletionRequest,
    TextCompletion,
    error_responses,
)

NONCE_HEADER = "x-trustdial-nonce"
#: request bodies whose nested models the gateway registers as OpenAPI components
BODIES = (ChatCompletionRequest, CompletionRequest)
MAX_BODY = 1 << 20
BODY_TIMEOUT = 10.0


def openai_error(status: int, code: str, message: str, param: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    if status == 404 and code == "model_not_found":
        kind = "invalid_request_error"
    return JSONResponse(
        status_code=status, content={"error": {"message": message, "type": kind, "param": param, "code": code}}
    )


def _error_event(err: RequestError) -> bytes:
    kind = "invalid_request_error" if err.status < 500 else "server_error"
    body = {"error": {"message": err.message, "type": kind, "param": err.param, "code": err.code}}
    return f"data: {json.dumps(body)}\n\n".encode()


def _event(value: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(value, separators=(',', ':'))}\n\n".encode()


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


async def _body(request: Request) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise RequestError("body_too_large", f"body exceeds {MAX_BODY} bytes", 413)
    chunks: list[bytes] = []
    size = 0
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), BODY_TIMEOUT)
        except StopAsyncIteration:
            break
        except TimeoutError as err:
            raise RequestError("request_timeout", f"no body bytes for {BODY_TIMEOUT} s", 408) from err
        size += len(chunk)
        if size > MAX_BODY:
            raise RequestError("body_too_large", f"body exceeds {MAX_BODY} bytes", 413)
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise RequestError("invalid_json", f"body is not valid JSON: {err}") from err


def _nonce(request: Request) -> bytes | None:
    text = request.headers.get(NONCE_HEADER)
    if text is None:
        return None
    try:
        nonce = bytes.fromhex(text)
    except ValueError as err:
        raise RequestError("invalid_nonce", f"{NONCE_HEADER} must be hex", param=NONCE_HEADER) from err
    if len(nonce) > MAX_NONCE:
        raise RequestError("invalid_nonce", f"{NONCE_HEADER} must be at most {MAX_NONCE} bytes", param=NONCE_HEADER)
    return nonce


def _choice(endpoint: Endpoint, text: str, finish: str | None, *, first: bool = False) -> dict[str, Any]:
    if endpoint is Endpoint.CHAT:
        delta: dict[str, Any] = {"role": "assistant", "content": text} if first else {"content": text}
        return {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
    return {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}


class Completions:
    def __init__(self, link: EnclaveLink) -> None:
        self.link = link

    async def handle(self, endpoint: Endpoint, request: Request) -> Response:
        try:
            body = await _body(request)
            try:
                parsed = parse_request(endpoint, body)
            except RequestRefused as err:
                raise RequestError(err.code, err.reason, err.status, param=err.param) from err
            message = {"op": "complete", "endpoint": endpoint.value, "body": body, "nonce": _nonce(request)}
            frames = self.link.stream(message)
            start = await frames.__anext__()  # errors before the first frame are plain HTTP errors
        except RequestError as err:
            return openai_error(err.status, err.code, err.message, err.param)
        except StopAsyncIteration:
            return openai_error(502, "ENCLAVE_ERROR", "the enclave ended the stream before it started")
        ident = ("chatcmpl-" if endpoint is Endpoint.CHAT else "cmpl-") + os.urandom(12).hex()
        created = int(time.time())
        if not parsed.stream:
            try:
                end = await self._last(frames)
            except RequestError as err:
                return openai_error(err.status, err.code, err.message, err.param)
            return JSONResponse(self._plain(endpoint, ident, created, parsed.model, start, end))
        return StreamingResponse(
            self._events(endpoint, ident, created, parsed.model, parsed.include_usage, start, frames),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
        )

    async def _last(self, frames: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
        async for frame in frames:
            if frame.get("event") == "end":
                return frame
        raise RequestError("ENCLAVE_ERROR", "the enclave ended the completion without its receipt", 502)

    def _plain(
        self, endpoint: Endpoint, ident: str, created: int, model: str, start: dict[str, Any], end: dict[str, Any]
    ) -> dict[str, Any]:
        usage = end["usage"]
        evidence = {
            "receipt": _b64(end["receipt"]),
            "request": _b64(start["request"]),
            "prompt_ids": start["prompt_ids"],
            "completion_ids": end["completion_ids"],
            "seed": start["seed"],
            "bundle_digest": start["bundle_digest"].hex(),
        }
        if endpoint is Endpoint.CHAT:
            choice: dict[str, Any] = {
                "index": 0, "message": {"role": "assistant", "content": end["text"]},
                "finish_reason": end["finish_reason"], "logprobs": None,
            }  # fmt: skip
            kind = "chat.completion"
        else:
            choice = {"index": 0, "text": end["text"], "finish_reason": end["finish_reason"], "logprobs": None}
            kind = "text_completion"
        return {
            "id": ident, "object": kind, "created": created, "model": model, "choices": [choice],
            "usage": {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]},
            "trustdial": evidence,
        }  # fmt: skip

    async def _events(
        self,
        endpoint: Endpoint,
        ident: str,
        created: int,
        model: str,
        include_usage: bool,
        start: dict[str, Any],
        frames: AsyncIterator[dict[str, Any]],
    ) -> AsyncIterator[bytes]:
        kind = "chat.completion.chunk" if endpoint is Endpoint.CHAT else "text_completion"
        head = {"id": ident, "object": kind, "created": created, "model": model}
        yield _event({
            **head, "choices": [_choice(endpoint, "", None, first=True)],
            "trustdial": {
                "index": 0, "receipt": _b64(start["receipt"]), "request": _b64(start["request"]),
                "prompt_ids": start["prompt_ids"], "seed": start["seed"],
                "bundle_digest": start["bundle_digest"].hex(),
            },
        })  # fmt: skip
        try:
            async for frame in frames:
                if frame.get("event") == "chunk":
                    yield _event({
                        **head, "choices": [_choice(endpoint, frame["text"], frame["finish_reason"])],
                        "trustdial": {"index": frame["index"], "token_ids": frame["token_ids"],
                                      "receipt": _b64(frame["receipt"])},
                    })  # fmt: skip
                elif frame.get("event") == "end":
                    usage = frame["usage"]
                    final: dict[str, Any] = {**head, "choices": []}
                    if include_usage:
                        final["usage"] = {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}
                    final["trustdial"] = {"final": True, "receipt": _b64(frame["receipt"]), "chunks": frame["chunks"]}
                    yield _event(final)
                    yield b"data: [DONE]\n\n"
                    return
        except RequestError as err:
            yield _error_event(err)
            return
        yield _error_event(RequestError("ENCLAVE_ERROR", "the enclave ended the stream without its receipt", 502))


async def model_list(link: EnclaveLink) -> dict[str, Any]:
    """The OpenAI model list (``object: list``, ``data``) of the enclave's language-model bundles."""
    reply = await link.call({"op": "llm_models"})
    created = int(time.time())
    data = [
        {"id": m["name"], "object": "model", "created": created, "owned_by": "trustdial",
         "bundle_digest": m["bundle_digest"]}
        for m in reply["models"]
    ]  # fmt: skip
    return {"object": "list", "data": data}


def mount(app: FastAPI, link: EnclaveLink) -> None:
    """Add the completion routes to the gateway's app."""
    completions = Completions(link)
    statuses = error_responses(400, 404, 408, 413, 500, 502, 503, 504)
    stream_doc = {"text/event-stream": {"schema": {"type": "string", "description": "server-sent events"}}}

    def body_doc(model: type[Any]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schema.pop("$defs", None)
        return {
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "responses": {"200": {"content": stream_doc}},
        }

    @app.post(
        "/v1/chat/completions", response_model=ChatCompletion, responses=statuses,
        openapi_extra=body_doc(ChatCompletionRequest),
    )  # fmt: skip
    async def chat_completions(request: Request) -> Response:
        return await completions.handle(Endpoint.CHAT, request)

    @app.post(
        "/v1/completions", response_model=TextCompletion, responses=statuses,
        openapi_extra=body_doc(CompletionRequest),
    )  # fmt: skip
    async def text_completions(request: Request) -> Response:
        return await completions.handle(Endpoint.COMPLETIONS, request)
