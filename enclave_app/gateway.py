"""The gateway on the parent instance: an HTTP JSON API in front of the enclave server.

Routes: ``GET /v1/models``, ``GET /v1/attestation?nonce=HEX``, ``POST /v1/infer``,
``POST /v1/generate``; OpenAPI document at ``/openapi.json``. Bodies are read with a size
limit and a per-chunk deadline; every error is ``{"error": {"code", "message"}}`` with a
stable code. The gateway holds no keys and signs nothing: the receipts come from the enclave.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from enclave_app.enclave_link import EnclaveLink
from enclave_app.errors import RequestError
from enclave_app.wire import tensors_from_cbor, tensors_from_json, tensors_to_cbor, tensors_to_json

MAX_NONCE_HEX = 128
_Body = TypeVar("_Body", bound="BaseModel")


@dataclass(frozen=True)
class GatewayLimits:
    max_body: int = 4 * 1024 * 1024
    body_timeout: float = 10.0


class TensorJson(BaseModel):
    dtype: str = Field(description="numpy dtype name, e.g. float32, int64")
    shape: list[int]
    data: str = Field(description="base64 of the little-endian C-order bytes")


class InferRequest(BaseModel):
    model: str
    inputs: dict[str, TensorJson]
    nonce: str | None = Field(default=None, description="hex, at most 64 bytes; echoed in the receipt")
    include_attestation: bool = Field(default=False, description="also return the key-binding attestation document")
    poseidon_scale: int | None = Field(
        default=None, description="hybrid pipelines: also sign ezkl's Poseidon hash of each output at this scale"
    )


class InferResponse(BaseModel):
    model: str
    outputs: dict[str, TensorJson]
    receipt: str = Field(description="base64 CBOR receipt (docs/receipts.md)")
    attestation: str | None = Field(default=None, description="base64 key-binding attestation document")


class GenerateRequest(BaseModel):
    model: str
    prompt_ids: list[int]
    max_new_tokens: int = 16
    eos_token_id: int | None = None
    nonce: str | None = None
    include_attestation: bool = False


class GenerateResponse(BaseModel):
    model: str
    completion_ids: list[int]
    receipt: str
    attestation: str | None = None


class AttestationResponse(BaseModel):
    document: str = Field(description="base64 attestation document for the caller's nonce, binding the receipt key")
    binding: str = Field(description="base64 attestation document named by every receipt (digest in the statement)")


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def _nonce(text: str | None) -> bytes | None:
    if text is None:
        return None
    if len(text) > MAX_NONCE_HEX:
        raise RequestError("BAD_NONCE", f"nonce must be at most {MAX_NONCE_HEX} hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError as err:
        raise RequestError("BAD_NONCE", "nonce must be hex") from err


async def _read_body(request: Request, limits: GatewayLimits) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body:
        raise RequestError("BODY_TOO_LARGE", f"body of {declared} bytes exceeds the limit of {limits.max_body}", 413)
    chunks: list[bytes] = []
    size = 0
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), limits.body_timeout)
        except StopAsyncIteration:
            break
        except TimeoutError as err:
            raise RequestError("REQUEST_TIMEOUT", f"no body bytes for {limits.body_timeout} s", 408) from err
        size += len(chunk)
        if size > limits.max_body:
            raise RequestError("BODY_TOO_LARGE", f"body exceeds the limit of {limits.max_body} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


async def _parse(request: Request, limits: GatewayLimits, model: type[_Body]) -> _Body:
    body = await _read_body(request, limits)
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise RequestError("MALFORMED_JSON", f"body is not valid JSON: {err}") from err
    try:
        return model.model_validate(value)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RequestError("BAD_REQUEST", f"{where}: {first['msg']}") from err


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def create_app(link: EnclaveLink, limits: GatewayLimits | None = None) -> FastAPI:
    limits = limits or GatewayLimits()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await link.close()

    app = FastAPI(
        lifespan=lifespan,
        title="trustdial gateway",
        version="1",
        description="Attested inference: every response carries a receipt signed inside the enclave.",
    )
    errors: dict[int | str, dict[str, Any]] = {400: {"model": ErrorResponse}, 503: {"model": ErrorResponse}}

    @app.exception_handler(RequestError)
    async def request_error(_: Request, err: RequestError) -> JSONResponse:
        return _error(err.status, err.code, err.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, err: RequestValidationError) -> JSONResponse:
        return _error(400, "BAD_REQUEST", str(err.errors()[0].get("msg", "invalid request")))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(err.status_code, "HTTP_ERROR")
        return _error(err.status_code, code, str(err.detail))

    @app.get("/v1/models", responses=errors)
    async def models() -> dict[str, Any]:
        reply = await link.call({"op": "models"})
        return {"models": reply["models"]}

    @app.get("/v1/attestation", response_model=AttestationResponse, responses=errors)
    async def attestation(nonce: str = Query(description="hex nonce, 1..64 bytes")) -> dict[str, str]:
        reply = await link.call({"op": "attest", "nonce": _nonce(nonce)})
        return {k: base64.b64encode(reply[k]).decode("ascii") for k in ("document", "binding")}

    async def binding_document() -> str:
        reply = await link.call({"op": "binding"})
        return base64.b64encode(reply["binding"]).decode("ascii")

    @app.post("/v1/infer", response_model=InferResponse, responses=errors, openapi_extra=_schema(InferRequest))
    async def infer(request: Request) -> dict[str, Any]:
        body = await _parse(request, limits, InferRequest)
        inputs = tensors_from_json({k: v.model_dump() for k, v in body.inputs.items()})
        message: dict[str, Any] = {
            "op": "infer", "model": body.model, "inputs": tensors_to_cbor(inputs), "nonce": _nonce(body.nonce)
        }  # fmt: skip
        if body.poseidon_scale is not None:
            message["poseidon_scale"] = body.poseidon_scale
        reply = await link.call(message)
        result: dict[str, Any] = {
            "model": body.model,
            "outputs": tensors_to_json(tensors_from_cbor(reply["outputs"])),
            "receipt": base64.b64encode(reply["receipt"]).decode("ascii"),
        }
        if body.include_attestation:
            result["attestation"] = await binding_document()
        return result

    @app.post("/v1/generate", response_model=GenerateResponse, responses=errors, openapi_extra=_schema(GenerateRequest))
    async def generate(request: Request) -> dict[str, Any]:
        body = await _parse(request, limits, GenerateRequest)
        message = {
            "op": "generate",
            "model": body.model,
            "prompt_ids": body.prompt_ids,
            "max_new_tokens": body.max_new_tokens,
            "eos_token_id": body.eos_token_id,
            "nonce": _nonce(body.nonce),
        }
        reply = await link.call(message)
        result: dict[str, Any] = {
            "model": body.model,
            "completion_ids": reply["completion_ids"],
            "receipt": base64.b64encode(reply["receipt"]).decode("ascii"),
        }
        if body.include_attestation:
            result["attestation"] = await binding_document()
        return result

    return app
