"""Pydantic models of the OpenAI-compatible routes, for the OpenAPI document (bodies are checked by
``trustdial_verifier._internal.llm.request``, which states the stable error codes)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from trustdial_verifier.unstable.llm import MAX_SEED, MAX_STOP, MAX_TOKENS_LIMIT, MAX_TOP_K


class Message(BaseModel):
    role: str = Field(json_schema_extra={"enum": ["system", "developer", "user", "assistant"]})
    content: str


class StreamOptions(BaseModel):
    include_usage: bool = False


class Sampling(BaseModel):
    model: str = Field(json_schema_extra={"minLength": 1})
    temperature: float | None = Field(default=None, json_schema_extra={"minimum": 0, "maximum": 2})
    top_p: float | None = Field(default=None, json_schema_extra={"exclusiveMinimum": 0, "maximum": 1})
    top_k: int | None = Field(
        default=None, description="trustdial extension; 0 = off", json_schema_extra={"minimum": 0, "maximum": MAX_TOP_K}
    )
    max_tokens: int | None = Field(default=None, json_schema_extra={"minimum": 1, "maximum": MAX_TOKENS_LIMIT})
    stop: str | list[str] | None = Field(default=None, json_schema_extra={"maxItems": MAX_STOP})
    seed: int | None = Field(
        default=None, description="absent: the enclave draws one and reports it",
        json_schema_extra={"minimum": 0, "maximum": MAX_SEED},
    )  # fmt: skip
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    n: int | None = Field(default=None, description="only 1", json_schema_extra={"enum": [1]})


class ChatCompletionRequest(Sampling):
    messages: list[Message] = Field(json_schema_extra={"minItems": 1, "maxItems": 256})
    max_completion_tokens: int | None = Field(default=None, json_schema_extra={"minimum": 1})


class CompletionRequest(Sampling):
    prompt: str


class TrustdialEvidence(BaseModel):
    receipt: str = Field(description="base64 CBOR receipt of the llm-completion statement (docs/llm-receipts.md)")
    request: str = Field(description="base64 deterministic CBOR request record the receipt binds")
    prompt_ids: list[int]
    completion_ids: list[int]
    seed: int
    bundle_digest: str


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatMessage(BaseModel):
    role: str
    content: str


class ChatChoice(BaseModel):
    index: int
    message: ChatMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    trustdial: TrustdialEvidence


class TextChoice(BaseModel):
    index: int
    text: str
    finish_reason: str
    logprobs: None = None


class TextCompletion(BaseModel):
    id: str
    object: str = "text_completion"
    created: int
    model: str
    choices: list[TextChoice]
    usage: Usage
    trustdial: TrustdialEvidence


class ModelCard(BaseModel):
    id: str
    object: str = "model"
    created: int
    owned_by: str
    bundle_digest: str | None = None


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str


class OpenAIError(BaseModel):
    error: OpenAIErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": OpenAIError} for status in statuses}
