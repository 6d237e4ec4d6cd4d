"""OpenAI-compatible completion requests: strict parsing, and the *request record* a receipt binds.

One parser serves the gateway (to refuse early), the enclave (which parses again: it trusts nothing the host
sends), the verifying proxy and the offline verifier (which compare a receipt's record with the request they
sent). Anything that would shape the output but is not implemented is refused, never ignored
(docs/llm-receipts.md §3 lists what is accepted).

The record is a deterministic CBOR map holding every field that shapes the output, with the values the enclave
used: defaults filled in, ``max_tokens`` resolved, and the seed (drawn by the enclave when the request had none).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import cbor2

from trustdial_verifier.errors import InputError, VerificationError

RECORD_TYPE = "trustdial/llm-request"
RECORD_VERSION = 1
MAX_MESSAGES = 256
MAX_CONTENT_CHARS = 100_000
MAX_STOP = 4
MAX_STOP_CHARS = 64
MAX_TOKENS_LIMIT = 4096
DEFAULT_MAX_TOKENS = 256
MAX_TOP_K = 100_000
#: onnxruntime-genai's random_seed is a signed 32-bit integer
MAX_SEED = (1 << 31) - 1
ROLES = ("system", "developer", "user", "assistant")


class Endpoint(StrEnum):
    CHAT = "chat.completions"
    COMPLETIONS = "completions"


class SeedSource(StrEnum):
    REQUEST = "request"
    ENCLAVE = "enclave"


class RequestRefused(InputError):
    """A request the engine will not run; ``param`` names the field, ``status`` the HTTP status."""

    def __init__(self, code: str, reason: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(code, reason)
        self.param = param
        self.status = status


#: accepted only with the value that means "off" (anything else would change the output and is not implemented)
NEUTRAL: Mapping[str, tuple[Any, ...]] = {
    "n": (1,),
    "logprobs": (False, None),
    "top_logprobs": (None, 0),
    "presence_penalty": (0, 0.0, None),
    "frequency_penalty": (0, 0.0, None),
    "logit_bias": (None, {}),
    "tools": (None, []),
    "tool_choice": (None, "none"),
    "functions": (None, []),
    "function_call": (None, "none"),
    "parallel_tool_calls": (None,),
    "response_format": (None, {"type": "text"}),
    "echo": (False, None),
    "suffix": (None,),
    "best_of": (1, None),
    "store": (False, None),
    "metadata": (None,),
    "service_tier": (None, "auto", "default"),
    "modalities": (None, ["text"]),
    "audio": (None,),
    "prediction": (None,),
    "reasoning_effort": (None,),
    "web_search_options": (None,),
}
COMMON = frozenset(
    {"model", "temperature", "top_p", "top_k", "max_tokens", "stop", "seed", "stream", "stream_options", "user"}
)
FIELDS: Mapping[Endpoint, frozenset[str]] = {
    Endpoint.CHAT: COMMON | {"messages", "max_completion_tokens"},
    Endpoint.COMPLETIONS: COMMON | {"prompt"},
}


@dataclass(frozen=True)
class ParsedRequest:
    """A request as the caller sent it, checked; ``None`` where the caller left a field out."""

    endpoint: Endpoint
    model: str
    messages: tuple[tuple[str, str], ...] | None
    prompt: str | None
    temperature: float
    top_p: float
    top_k: int
    max_tokens: int | None
    stop: tuple[str, ...]
    seed: int | None
    stream: bool
    include_usage: bool
    user: str | None


@dataclass(frozen=True)
class RequestRecord:
    """What the engine ran with: the parsed request with ``max_tokens`` and ``seed`` resolved."""

    endpoint: Endpoint
    model: str
    messages: tuple[tuple[str, str], ...] | None
    prompt: str | None
    temperature: float
    top_p: float
    top_k: int
    max_tokens: int
    stop: tuple[str, ...]
    seed: int
    seed_source: SeedSource
    stream: bool
    include_usage: bool
    user: str | None

    def to_cbor_value(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "v": RECORD_VERSION,
            "type": RECORD_TYPE,
            "endpoint": self.endpoint.value,
            "model": self.model,
            "temperature": float(self.temperature),
            "top_p": float(self.top_p),
            "top_k": self.top_k,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
            "seed": self.seed,
            "seed_source": self.seed_source.value,
            "stream": self.stream,
            "include_usage": self.include_usage,
            "user": self.user,
        }
        if self.messages is not None:
            value["messages"] = [[role, content] for role, content in self.messages]
        else:
            value["prompt"] = self.prompt
        return value

    def encode(self) -> bytes:
        """Deterministic CBOR (RFC 8949 §4.2.1; floats in their shortest exact form)."""
        return cbor2.dumps(self.to_cbor_value(), canonical=True)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def _number(body: Mapping[str, Any], name: str, default: float, low: float, high: float, *, open_low: bool) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestRefused("invalid_type", f"{name} must be a number", name)
    if value > high or value < low or (open_low and value == low):
        bound = f"({low}, {high}]" if open_low else f"[{low}, {high}]"
        raise RequestRefused("invalid_value", f"{name} must be in {bound}, found {value}", name)
    return float(value)


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if type(value) is not int:
        raise RequestRefused("invalid_type", f"{name} must be an integer", name)
    if not low <= value <= high:
        raise RequestRefused("invalid_value", f"{name} must be in {low}..{high}, found {value}", name)
    return value


def _messages(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_MESSAGES:
        raise RequestRefused("invalid_value", f"messages must be an array of 1..{MAX_MESSAGES} messages", "messages")
    out = []
    for i, item in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            raise RequestRefused("invalid_type", f"{where} must be an object", where)
        extra = sorted(set(item) - {"role", "content"})
        if extra:
            raise RequestRefused("unsupported_parameter", f"{where}: {extra} are not supported", f"{where}.{extra[0]}")
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise RequestRefused("invalid_value", f"{where}.role must be one of {list(ROLES)}", f"{where}.role")
        if not isinstance(content, str):
            raise RequestRefused(
                "invalid_type",
                f"{where}.content must be a string (content parts are not supported)",
                f"{where}.content",
            )
        if len(content) > MAX_CONTENT_CHARS:
            raise RequestRefused("invalid_value", f"{where}.content exceeds {MAX_CONTENT_CHARS} characters", where)
        out.append((role, content))
    return tuple(out)


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > MAX_STOP:
        raise RequestRefused("invalid_value", f"stop must be a string or an array of at most {MAX_STOP}", "stop")
    for item in items:
        if not isinstance(item, str) or not 1 <= len(item) <= MAX_STOP_CHARS:
            raise RequestRefused("invalid_value", f"each stop sequence must be 1..{MAX_STOP_CHARS} characters", "stop")
    return tuple(items)


def _same(value: Any, off: Any) -> bool:
    return type(value) is type(off) and value == off


def parse_request(endpoint: Endpoint, body: Any) -> ParsedRequest:
    """Check an OpenAI-style request body; raise :class:`RequestRefused` on the first problem."""
    if not isinstance(body, dict):
        raise RequestRefused("invalid_type", "the request body must be a JSON object")
    for name, neutral in NEUTRAL.items():
        if name in body and not any(_same(body[name], off) for off in neutral):
            raise RequestRefused("unsupported_parameter", f"{name}={body[name]!r} is not implemented", name)
    unknown = sorted(set(body) - FIELDS[endpoint] - set(NEUTRAL))
    if unknown:
        raise RequestRefused("unsupported_parameter", f"unknown or unsupported parameters {unknown}", unknown[0])
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestRefused("missing_required_parameter", "model must be a non-empty string", "model")
    messages = prompt = None
    if endpoint is Endpoint.CHAT:
        if "messages" not in body:
            raise RequestRefused("missing_required_parameter", "messages is required", "messages")
        messages = _messages(body["messages"])
    else:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or len(prompt) > MAX_CONTENT_CHARS:
            raise RequestRefused(
                "invalid_value", f"prompt must be a string of at most {MAX_CONTENT_CHARS} characters", "prompt"
            )
    max_tokens = body.get("max_tokens")
    if endpoint is Endpoint.CHAT and body.get("max_completion_tokens") is not None:
        if max_tokens is not None and max_tokens != body["max_completion_tokens"]:
            raise RequestRefused("invalid_value", "max_tokens and max_completion_tokens differ", "max_tokens")
        max_tokens = body["max_completion_tokens"]
    if max_tokens is not None:
        max_tokens = _integer(max_tokens, "max_tokens", 1, MAX_TOKENS_LIMIT)
    seed = body.get("seed")
    if seed is not None:
        seed = _integer(seed, "seed", 0, MAX_SEED)
    top_k = body.get("top_k")
    top_k = 0 if top_k is None else _integer(top_k, "top_k", 0, MAX_TOP_K)
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise RequestRefused("invalid_type", "stream must be a boolean", "stream")
    include_usage = False
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise RequestRefused("invalid_value", "stream_options is only allowed with stream: true", "stream_options")
        if not isinstance(options, dict) or not set(options) <= {"include_usage"}:
            raise RequestRefused(
                "unsupported_parameter", "stream_options supports include_usage only", "stream_options"
            )
        include_usage = options.get("include_usage", False)
        if not isinstance(include_usage, bool):
            raise RequestRefused("invalid_type", "stream_options.include_usage must be a boolean", "stream_options")
    user = body.get("user")
    if user is not None and (not isinstance(user, str) or len(user) > 256):
        raise RequestRefused("invalid_value", "user must be a string of at most 256 characters", "user")
    return ParsedRequest(
        endpoint=endpoint,
        model=model,
        messages=messages,
        prompt=prompt,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0, open_low=False),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0, open_low=True),
        top_k=top_k,
        max_tokens=max_tokens,
        stop=_stop(body.get("stop")),
        seed=seed,
        stream=stream,
        include_usage=include_usage,
        user=user,
    )


def resolve(parsed: ParsedRequest, *, max_tokens: int, seed: int) -> RequestRecord:
    """The record of a run: ``max_tokens`` as the engine resolved it, ``seed`` the caller's or the enclave's."""
    return RequestRecord(
        endpoint=parsed.endpoint,
        model=parsed.model,
        messages=parsed.messages,
        prompt=parsed.prompt,
        temperature=parsed.temperature,
        top_p=parsed.top_p,
        top_k=parsed.top_k,
        max_tokens=max_tokens,
        stop=parsed.stop,
        seed=parsed.seed if parsed.seed is not None else seed,
        seed_source=SeedSource.REQUEST if parsed.seed is not None else SeedSource.ENCLAVE,
        stream=parsed.stream,
        include_usage=parsed.include_usage,
        user=parsed.user,
    )


class RecordMismatch(VerificationError):
    """A receipt's request record does not describe the request the caller sent (``LLM_REQUEST_MISMATCH``)."""


def check_record(raw: bytes, sent: ParsedRequest) -> RequestRecord:
    """Decode a receipt's record strictly and require it to be the record of ``sent``: every field the caller set
    equal, every field it left out at its documented default, and ``max_tokens`` / ``seed`` resolved as allowed."""
    try:
        value = cbor2.loads(raw)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as err:
        raise RecordMismatch("LLM_RECORD_MALFORMED", f"the request record is not valid CBOR: {err}") from err
    if not isinstance(value, dict) or value.get("type") != RECORD_TYPE or value.get("v") != RECORD_VERSION:
        raise RecordMismatch("LLM_RECORD_MALFORMED", f"expected a {RECORD_TYPE} v{RECORD_VERSION} map")
    max_tokens = value.get("max_tokens")
    seed = value.get("seed")
    if type(max_tokens) is not int or not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise RecordMismatch("LLM_RECORD_MALFORMED", f"max_tokens {max_tokens!r} is out of range")
    if type(seed) is not int or not 0 <= seed <= MAX_SEED:
        raise RecordMismatch("LLM_RECORD_MALFORMED", f"seed {seed!r} is out of range")
    if sent.max_tokens is not None and max_tokens != sent.max_tokens:
        raise RecordMismatch("LLM_REQUEST_MISMATCH", f"max_tokens: sent {sent.max_tokens}, record {max_tokens}")
    expected = resolve(sent, max_tokens=max_tokens, seed=seed)
    encoded = cbor2.dumps(value, canonical=True)
    if encoded != raw:
        raise RecordMismatch("LLM_RECORD_MALFORMED", "the request record is not in deterministic CBOR")
    if raw != expected.encode():
        mine = expected.to_cbor_value()
        differ = sorted(k for k in set(mine) | set(value) if mine.get(k) != value.get(k))
        raise RecordMismatch("LLM_REQUEST_MISMATCH", f"the record differs from the request sent in {differ}")
    return expected
