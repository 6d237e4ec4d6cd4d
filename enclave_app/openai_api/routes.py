"""OpenAI-compatible routes on the gateway: ``POST /v1/chat/completions``, ``POST /v1/completions`` (plain and
``stream: true`` as server-sent events) and the OpenAI model list (``object: list, data``) merged into
``GET /v1/models``.

The gateway relays: the enclave parses, templates, generates and signs. A stream's chunks are relayed as the
enclave sends them, each with its receipt (``trustdial`` field), one chunk of the chunked HTTP body per event,
written as the event is produced; the last event (``choices: []``, with ``usage`` when
``stream_options.include_usage``) carries the completion's receipt, then ``data: [DONE]``. Errors use
OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``; an error after the stream started is one
event with that body (the ``openai`` client raises it). So do the errors the HTTP server finds itself on these
paths (``render_error``: a malformed request, a body over the server's limit, a timeout, a wrong method), with
the server's code in lower case (``body_too_large``, ``bad_request``, ``request_timeout``, ...). A body whose
``Content-Type`` is not ``application/json`` is refused (415 ``unsupported_media_type``); one without it is read
as JSON. The caller's nonce for the receipts travels in the
``X-Trustdial-Nonce`` header (hex, at most 64 bytes), so the body stays an OpenAI body.

The routes answer ``enclave_app.http_server`` requests (``Completions.chat`` / ``Completions.text``, mounted by
``enclave_app.gateway``); ``openapi_paths`` documents them in the gateway's OpenAPI document.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import time
from collections.abc import AsyncGenerator
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from trustdial_verifier.unstable.decoding import strict_json
from trustdial_verifier.unstable.llm import Endpoint, RequestRefused, parse_request

from enclave_app.enclave_link import EnclaveLink
from enclave_app.errors import RequestError
from enclave_app.http_server import HttpError, HttpRequest, HttpResponse
from enclave_app.limits import MAX_NONCE
from enclave_app.openai_api.schemas import (
    ChatCompletion,
    ChatCompletionRequest,
    CompletionRequest,
    OpenAIError,
    TextCompletion,
)

NONCE_HEADER = "x-trustdial-nonce"
#: the routes that answer in OpenAI's error shape
PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})
#: request bodies whose nested models the gateway registers as OpenAPI components (the bodies are inlined)
BODIES = (ChatCompletionRequest, CompletionRequest)
#: answer models the gateway registers as OpenAPI components
COMPONENTS: tuple[type[BaseModel], ...] = (ChatCompletion, TextCompletion, OpenAIError)
#: statuses the completion routes answer with besides 200, each with OpenAI's error body
ERROR_STATUSES = (400, 404, 405, 408, 413, 415, 500, 502, 503, 504)
MAX_BODY = 1 << 20
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
REF_TEMPLATE = "#/components/schemas/{model}"


def _json(value: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def openai_error(
    status: int, code: str, message: str, param: str | None = None, headers: tuple[tuple[str, str], ...] = (),
    kind: str | None = None,
) -> HttpResponse:
    kind = kind or ("invalid_request_error" if status < 500 else "server_error")
    body = json.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}}).encode()
    return HttpResponse(status, body, headers=headers)


def render_error(err: HttpError, headers: tuple[tuple[str, str], ...] = ()) -> HttpResponse:
    """An error of the HTTP server (or the gateway's routing) on one of ``PATHS``, in OpenAI's shape. All but a
    failure of the gateway itself (500) are the request's (501 and 505 included: a coding or version it used)."""
    kind = "server_error" if err.status == 500 else "invalid_request_error"
    return openai_error(err.status, err.code.lower(), err.message, headers=headers, kind=kind)


def _error_event(err: RequestError) -> bytes:
    kind = "invalid_request_error" if err.status < 500 else "server_error"
    body = {"error": {"message": err.message, "type": kind, "param": err.param, "code": err.code}}
    return f"data: {json.dumps(body)}\n\n".encode()


def _event(value: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(value, separators=(',', ':'))}\n\n".encode()


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _body(request: HttpRequest) -> Any:
    """The JSON body (the HTTP server has read it with its size limit and per-chunk deadline)."""
    declared = request.headers.get("content-type")
    if declared is not None:
        media = declared.partition(";")[0].strip().lower()
        if media != "application/json":
            raise RequestError(
                "unsupported_media_type", f"the body must be application/json, not {media or 'empty'!r}", 415
            )
    if len(request.body) > MAX_BODY:
        raise RequestError("body_too_large", f"body exceeds {MAX_BODY} bytes", 413)
    try:
        return strict_json.loads(request.body, max_bytes=MAX_BODY)
    except strict_json.JsonError as err:
        raise RequestError("invalid_json", f"body is not JSON the enclave accepts: {err.reason} ({err.code})") from None


def _nonce(request: HttpRequest) -> bytes | None:
    text = request.headers.get(NONCE_HEADER)
    if text is None:
        return None
    if not _HEX.fullmatch(text):  # two digits per byte, nothing else (bytes.fromhex would skip spaces)
        raise RequestError("invalid_nonce", f"{NONCE_HEADER} must be hex", param=NONCE_HEADER)
    nonce = bytes.fromhex(text)
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

    async def chat(self, request: HttpRequest) -> HttpResponse:
        return await self.handle(Endpoint.CHAT, request)

    async def text(self, request: HttpRequest) -> HttpResponse:
        return await self.handle(Endpoint.COMPLETIONS, request)

    async def handle(self, endpoint: Endpoint, request: HttpRequest) -> HttpResponse:
        try:
            body = _body(request)
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
            finally:
                await frames.aclose()
            return _json(self._plain(endpoint, ident, created, parsed.model, start, end))
        return HttpResponse(
            200, b"", content_type="text/event-stream", headers=(("cache-control", "no-cache"),),
            stream=self._events(endpoint, ident, created, parsed.model, parsed.include_usage, start, frames),
        )  # fmt: skip

    async def _last(self, frames: AsyncGenerator[dict[str, Any], None]) -> dict[str, Any]:
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
        frames: AsyncGenerator[dict[str, Any], None],
    ) -> AsyncGenerator[bytes, None]:
        async with contextlib.aclosing(frames):  # the stream is let go of even when the caller stops reading
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
                            total = usage["prompt_tokens"] + usage["completion_tokens"]
                            final["usage"] = {**usage, "total_tokens": total}
                        final["trustdial"] = {
                            "final": True, "receipt": _b64(frame["receipt"]), "chunks": frame["chunks"]
                        }  # fmt: skip
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


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(summary: str, operation_id: str, body: type[BaseModel], answer: type[BaseModel]) -> dict[str, Any]:
    schema = body.model_json_schema(ref_template=REF_TEMPLATE)
    schema.pop("$defs", None)  # registered as components by the gateway
    ok = {
        **_content({"$ref": REF_TEMPLATE.format(model=answer.__name__)}),
        "text/event-stream": {"schema": {"type": "string", "description": "server-sent events"}},
    }
    responses: dict[str, Any] = {"200": {"description": "Successful Response", "content": ok}}
    for status in ERROR_STATUSES:
        responses[str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": _content({"$ref": REF_TEMPLATE.format(model=OpenAIError.__name__)}),
        }
    return {
        "summary": summary, "operationId": operation_id,
        "parameters": [{
            "name": NONCE_HEADER, "in": "header", "required": False,
            "description": f"hex nonce echoed in the receipts, at most {MAX_NONCE} bytes",
            "schema": {"type": "string", "pattern": f"^([0-9a-fA-F]{{2}}){{0,{MAX_NONCE}}}$"},
        }],
        "requestBody": {"required": True, "content": _content(schema)},
        "responses": responses,
    }  # fmt: skip


def openapi_paths() -> dict[str, Any]:
    """The completion routes' entries of the gateway's OpenAPI document (``paths``)."""
    return {
        "/v1/chat/completions": {
            "post": _operation("Chat Completions", "chat_completions_v1_chat_completions_post",
                               ChatCompletionRequest, ChatCompletion),
        },
        "/v1/completions": {
            "post": _operation("Text Completions", "text_completions_v1_completions_post",
                               CompletionRequest, TextCompletion),
        },
    }  # fmt: skip
