"""The gateway on the parent instance: an HTTP JSON API in front of the enclave server.

Routes: ``GET /v1/models``, ``GET /v1/attestation?nonce=HEX``, ``POST /v1/infer``, and the OpenAI-compatible
``POST /v1/chat/completions`` / ``POST /v1/completions`` (enclave_app.openai_api); OpenAPI document at
``/openapi.json``. Bodies are read with a size
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
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from verifier.tensors import DTYPE_SIZES

from enclave_app.enclave_link import EnclaveLink
from enclave_app.errors import RequestError
from enclave_app.limits import MAX_NONCE
from enclave_app.openai_api import routes as openai_api
from enclave_app.wire import MAX_TENSORS, tensors_from_cbor, tensors_from_json, tensors_to_cbor, tensors_to_json

MAX_NONCE_HEX = 2 * MAX_NONCE
DTYPE_NAMES: list[Any] = sorted(DTYPE_SIZES)
# What the gateway and the enclave accept, stated in the OpenAPI document (checked in code, with the
# stable codes listed there, rather than by the schema validator)
HEX_BYTE = "[0-9a-fA-F]{2}"
NONCE_PATTERN = f"^({HEX_BYTE}){{0,{MAX_NONCE}}}$"
ATTESTATION_NONCE_PATTERN = f"^({HEX_BYTE}){{1,{MAX_NONCE}}}$"
BASE64_PATTERN = "^[A-Za-z0-9+/]*={0,2}$"
_Body = TypeVar("_Body", bound="BaseModel")


@dataclass(frozen=True)
class GatewayLimits:
    max_body: int = 4 * 1024 * 1024
    body_timeout: float = 10.0


class TensorJson(BaseModel):
    dtype: str = Field(description="numpy dtype name", json_schema_extra={"enum": DTYPE_NAMES})
    shape: list[int] = Field(json_schema_extra={"items": {"type": "integer", "minimum": 0}, "maxItems": 32})
    data: str = Field(
        description="base64 of the little-endian C-order bytes (dtype size x the product of shape)",
        json_schema_extra={"pattern": BASE64_PATTERN},
    )


class InferRequest(BaseModel):
    model: str = Field(json_schema_extra={"minLength": 1})
    inputs: dict[str, TensorJson] = Field(json_schema_extra={"minProperties": 1, "maxProperties": MAX_TENSORS})
    nonce: str | None = Field(
        default=None,
        description="hex, at most 64 bytes; echoed in the receipt",
        json_schema_extra={"pattern": NONCE_PATTERN},
    )
    include_attestation: bool = Field(default=False, description="also return the key-binding attestation document")
    poseidon_scale: int | None = Field(
        default=None,
        description="hybrid pipelines: also sign ezkl's Poseidon hash of each output at this scale",
        json_schema_extra={"minimum": 0, "maximum": 30},
    )


class InferResponse(BaseModel):
    model: str
    outputs: dict[str, TensorJson]
    receipt: str = Field(description="base64 CBOR receipt (docs/receipts.md)")
    attestation: str | None = Field(default=None, description="base64 key-binding attestation document")


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


REF_TEMPLATE = "#/components/schemas/{model}"
# statuses a route can answer with besides 200, each with the error body
ENCLAVE_STATUSES = (500, 502, 503, 504)
REQUEST_STATUSES = (400, 404, 408, 413, 422)


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorResponse} for status in sorted(statuses)}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    """A request body read by hand (size limit, deadline), described as ``model``; its nested
    models are registered as components by :func:`_openapi`."""
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    schema.pop("$defs", None)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _openapi(app: FastAPI, bodies: tuple[type[BaseModel], ...]) -> dict[str, Any]:
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in bodies:
            for name, schema in model.model_json_schema(ref_template=REF_TEMPLATE).get("$defs", {}).items():
                schemas.setdefault(name, schema)
        app.openapi_schema = document
    return app.openapi_schema


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
    request_errors = _errors(*REQUEST_STATUSES, *ENCLAVE_STATUSES)
    app.openapi = lambda: _openapi(app, (InferRequest, *openai_api.BODIES))  # type: ignore[method-assign]

    @app.exception_handler(RequestError)
    async def request_error(_: Request, err: RequestError) -> JSONResponse:
        return _error(err.status, err.code, err.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, err: RequestValidationError) -> JSONResponse:
        return _error(400, "BAD_REQUEST", str(err.errors()[0].get("msg", "invalid request")))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(err.status_code, "HTTP_ERROR")
        response = _error(err.status_code, code, str(err.detail))
        response.headers.update(err.headers or {})  # 405 names the allowed methods (Allow)
        return response

    @app.get("/v1/models", responses=_errors(*ENCLAVE_STATUSES))
    async def models() -> dict[str, Any]:
        reply = await link.call({"op": "models"})
        return {"models": reply["models"], **(await openai_api.model_list(link))}  # + OpenAI's object/data

    @app.get("/v1/attestation", response_model=AttestationResponse, responses=_errors(400, *ENCLAVE_STATUSES))
    async def attestation(
        nonce: str = Query(
            description="hex nonce, 1..64 bytes", json_schema_extra={"pattern": ATTESTATION_NONCE_PATTERN}
        ),
    ) -> dict[str, str]:
        reply = await link.call({"op": "attest", "nonce": _nonce(nonce)})
        return {k: base64.b64encode(reply[k]).decode("ascii") for k in ("document", "binding")}

    async def binding_document() -> str:
        reply = await link.call({"op": "binding"})
        return base64.b64encode(reply["binding"]).decode("ascii")

    @app.post("/v1/infer", response_model=InferResponse, responses=request_errors, openapi_extra=_schema(InferRequest))
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

    openai_api.mount(app, link)  # /v1/chat/completions, /v1/completions
    return app
