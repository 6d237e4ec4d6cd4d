"""The gateway on the parent instance: an HTTP JSON API in front of the enclave server.

Routes: ``GET /v1/models``, ``GET /v1/attestation?nonce=HEX``, ``POST /v1/infer``, and the OpenAI-compatible
``POST /v1/chat/completions`` / ``POST /v1/completions`` (plain and server-sent events;
``enclave_app.openai_api``); OpenAPI document at ``/openapi.json`` (Swagger UI at ``/docs``). Bodies
are read with a size limit and a per-chunk deadline (``enclave_app.http_server``, which also
frames the requests); every error is ``{"error": {"code", "message"}}`` with a stable code (the
completion routes answer in OpenAI's error shape). The gateway holds no keys and signs nothing: the
receipts come from the enclave.

Per request the gateway validates the JSON body against its schema (pydantic, one pass over the
bytes), decodes each tensor's base64 once, checks dtype, shape and size, and puts the raw bytes
into the enclave frame; the enclave's answer goes back with only its tensor bytes and receipt
base64-encoded (no tensor objects are rebuilt on the way back: the client checks them against
the receipt).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import parse_qs

from pydantic import BaseModel, Field, ValidationError
from trustdial_verifier.unstable.tensors import DTYPE_SIZES

from enclave_app.enclave_link import EnclaveLink
from enclave_app.errors import RequestError
from enclave_app.http_server import HttpError, HttpLimits, HttpRequest, HttpResponse, error_response, plain_errors
from enclave_app.limits import MAX_NONCE
from enclave_app.openai_api import routes as openai_api
from enclave_app.wire import MAX_TENSORS, tensors_from_json, tensors_to_cbor

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
    keep_alive: float = 30.0

    def http(self) -> HttpLimits:
        return HttpLimits(max_body=self.max_body, body_timeout=self.body_timeout, keep_alive=self.keep_alive)


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


_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


def _nonce(text: str | None) -> bytes | None:
    if text is None:
        return None
    if len(text) > MAX_NONCE_HEX:
        raise RequestError("BAD_NONCE", f"nonce must be at most {MAX_NONCE_HEX} hex digits")
    if not _HEX.fullmatch(text):
        raise RequestError("BAD_NONCE", "nonce must be hex (two digits per byte)")
    return bytes.fromhex(text)


def _parse(body: bytes, model: type[_Body]) -> _Body:
    """The body validated against ``model`` in one pass (JSON parsing included)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            raise RequestError("MALFORMED_JSON", f"body is not valid JSON: {first['msg']}") from err
        where = ".".join(str(p) for p in first["loc"])
        raise RequestError("BAD_REQUEST", f"{where}: {first['msg']}" if where else first["msg"]) from err


def _b64(raw: Any) -> str:
    if not isinstance(raw, bytes):
        raise RequestError("BAD_ENCLAVE_REPLY", "the enclave answered with a malformed message", 502)
    return base64.b64encode(raw).decode("ascii")


def _outputs_json(outputs: Any) -> dict[str, Any]:
    """The enclave's output tensors for JSON: the bytes base64-encoded, nothing else rebuilt."""
    if not isinstance(outputs, dict):
        raise RequestError("BAD_ENCLAVE_REPLY", "the enclave answered with a malformed message", 502)
    result = {}
    for name, tensor in outputs.items():
        if not isinstance(tensor, dict):
            raise RequestError("BAD_ENCLAVE_REPLY", "the enclave answered with a malformed message", 502)
        result[name] = {"dtype": tensor.get("dtype"), "shape": tensor.get("shape"), "data": _b64(tensor.get("data"))}
    return result


REF_TEMPLATE = "#/components/schemas/{model}"
# statuses a route can answer with besides 200, each with the error body
ENCLAVE_STATUSES = (500, 502, 503, 504)
REQUEST_STATUSES = (400, 404, 408, 413, 422)
TITLE = "trustdial gateway"
DESCRIPTION = "Attested inference: every response carries a receipt signed inside the enclave."


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def _responses(ok: dict[str, Any], *statuses: int) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "Successful Response", "content": _json_content(ok)}}
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": _json_content(_ref(ErrorResponse)),
        }
    return responses


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    schema.pop("$defs", None)
    return {"required": True, "content": _json_content(schema)}


def openapi_document() -> dict[str, Any]:
    """The gateway's OpenAPI 3.1 document: every route, its body, its answers and their statuses."""
    schemas: dict[str, Any] = {}
    bodies: tuple[type[BaseModel], ...] = (InferRequest, *openai_api.BODIES)  # inlined in their operation
    answers: tuple[type[BaseModel], ...] = (InferResponse, AttestationResponse, ErrorResponse, *openai_api.COMPONENTS)
    for model in (*bodies, *answers):
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        for name, nested in schema.pop("$defs", {}).items():
            schemas.setdefault(name, nested)
        if model not in bodies:
            schemas[model.__name__] = schema
    request_errors = (*REQUEST_STATUSES, *ENCLAVE_STATUSES)
    nonce = {
        "name": "nonce",
        "in": "query",
        "required": True,
        "description": "hex nonce, 1..64 bytes",
        "schema": {"type": "string", "pattern": ATTESTATION_NONCE_PATTERN, "description": "hex nonce, 1..64 bytes"},
    }
    models_ok = {"type": "object", "additionalProperties": True, "title": "Models"}
    paths = {
        "/v1/models": {
            "get": {"summary": "Models", "operationId": "models_v1_models_get",
                    "responses": _responses(models_ok, *ENCLAVE_STATUSES)},
        },
        "/v1/attestation": {
            "get": {"summary": "Attestation", "operationId": "attestation_v1_attestation_get", "parameters": [nonce],
                    "responses": _responses(_ref(AttestationResponse), 400, *ENCLAVE_STATUSES)},
        },
        "/v1/infer": {
            "post": {"summary": "Infer", "operationId": "infer_v1_infer_post",
                     "requestBody": _body_schema(InferRequest),
                     "responses": _responses(_ref(InferResponse), *request_errors)},
        },
        **openai_api.openapi_paths(),
    }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "description": DESCRIPTION, "version": "1"},
        "paths": paths,
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


def _swagger_ui() -> bytes:
    from fastapi.openapi.docs import get_swagger_ui_html

    return bytes(get_swagger_ui_html(openapi_url="/openapi.json", title=f"{TITLE} - Swagger UI").body)


def render_error(path: str | None, err: HttpError) -> HttpResponse:
    """The HTTP server's own errors (``ErrorRenderer``): OpenAI's shape on the OpenAI-compatible routes, the
    gateway's elsewhere."""
    if path in openai_api.PATHS:
        return openai_api.render_error(err)
    return plain_errors(path, err)


def _ok(value: dict[str, Any]) -> HttpResponse:
    return HttpResponse(200, json.dumps(value, separators=(",", ":")).encode())


Route = Callable[[HttpRequest], Awaitable[HttpResponse]]


class Gateway:
    """The routes; :meth:`handle` answers one parsed HTTP request (``enclave_app.http_server``)."""

    def __init__(self, link: EnclaveLink, limits: GatewayLimits | None = None) -> None:
        self.link = link
        self.limits = limits or GatewayLimits()
        self.document = json.dumps(openapi_document()).encode()
        self.completions = openai_api.Completions(link)
        self._docs: bytes | None = None
        self.routes: dict[str, tuple[str, Route]] = {
            "/v1/models": ("GET", self.models),
            "/v1/attestation": ("GET", self.attestation),
            "/v1/infer": ("POST", self.infer),
            "/v1/chat/completions": ("POST", self.completions.chat),
            "/v1/completions": ("POST", self.completions.text),
            "/openapi.json": ("GET", self.openapi),
            "/docs": ("GET", self.docs),
        }

    async def handle(self, request: HttpRequest) -> HttpResponse:
        route = self.routes.get(request.path)
        if route is None:
            return error_response(404, "NOT_FOUND", "Not Found")
        method, answer = route
        if request.method != method and not (method == "GET" and request.method == "HEAD"):
            allow = (("allow", "GET, HEAD" if method == "GET" else method),)
            refused = HttpError(405, "METHOD_NOT_ALLOWED", "Method Not Allowed")
            if request.path in openai_api.PATHS:
                return openai_api.render_error(refused, allow)
            return error_response(refused.status, refused.code, refused.message, allow)
        try:
            return await answer(request)
        except RequestError as err:
            return error_response(err.status, err.code, err.message)

    async def openapi(self, _: HttpRequest) -> HttpResponse:
        return HttpResponse(200, self.document)

    async def docs(self, _: HttpRequest) -> HttpResponse:
        if self._docs is None:
            self._docs = _swagger_ui()
        return HttpResponse(200, self._docs, content_type="text/html; charset=utf-8")

    async def models(self, _: HttpRequest) -> HttpResponse:
        reply = await self.link.call({"op": "models"})
        return _ok({"models": reply["models"], **(await openai_api.model_list(self.link))})  # + OpenAI's list

    async def attestation(self, request: HttpRequest) -> HttpResponse:
        values = parse_qs(request.query, keep_blank_values=True).get("nonce")
        if not values:
            raise RequestError("BAD_REQUEST", "nonce: Field required")
        reply = await self.link.call({"op": "attest", "nonce": _nonce(values[-1])})
        return _ok({"document": _b64(reply.get("document")), "binding": _b64(reply.get("binding"))})

    async def _binding_document(self) -> str:
        reply = await self.link.call({"op": "binding"})
        return _b64(reply.get("binding"))

    async def infer(self, request: HttpRequest) -> HttpResponse:
        body = _parse(request.body, InferRequest)
        inputs = tensors_from_json(
            {name: {"dtype": t.dtype, "shape": t.shape, "data": t.data} for name, t in body.inputs.items()}
        )  # base64 decoded once; dtype, shape and size checked
        message: dict[str, Any] = {
            "op": "infer", "model": body.model, "inputs": tensors_to_cbor(inputs), "nonce": _nonce(body.nonce)
        }  # fmt: skip
        if body.poseidon_scale is not None:
            message["poseidon_scale"] = body.poseidon_scale
        reply = await self.link.call(message)
        result: dict[str, Any] = {
            "model": body.model,
            "outputs": _outputs_json(reply.get("outputs")),
            "receipt": _b64(reply.get("receipt")),
        }
        if body.include_attestation:
            result["attestation"] = await self._binding_document()
        return _ok(result)
