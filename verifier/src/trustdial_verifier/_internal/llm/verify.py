"""Checking completions and their streams against the request sent (docs/llm-receipts.md §6).

:func:`verify_completion` checks a plain response; :class:`StreamVerifier` checks a stream one event at a time,
so that a caller can release each event's text only after :meth:`StreamVerifier.check_event` returned for it.
Both need the receipt key and attestation digest (from a verified binding document), the accepted bundle digests,
the request body sent, the nonce sent and the sequence floor. Every failure raises
:class:`~trustdial_verifier.errors.VerificationError` with a stable code.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trustdial_verifier._internal.llm.request import (
    Endpoint,
    ParsedRequest,
    RequestRecord,
    RequestRefused,
    check_record,
    parse_request,
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
    input_digest,
)
from trustdial_verifier._internal.receipts.model import BatchRoot, Statement
from trustdial_verifier._internal.receipts.verify import ReceiptExpectation, check_statement, open_receipt
from trustdial_verifier.errors import VerificationError

MAX_IDS = 1 << 16


class CompletionError(VerificationError):
    """A completion or a stream event was examined and rejected (codes ``LLM_*`` or ``RECEIPT_*``)."""


@dataclass(frozen=True)
class ChatExpectation:
    public_key: bytes
    attestation_digest: bytes
    bundles: frozenset[bytes]
    endpoint: Endpoint
    request: Mapping[str, Any]
    nonce: bytes
    min_seq: int = 0
    not_before_ms: int = 0

    def parsed(self) -> ParsedRequest:
        try:
            return parse_request(self.endpoint, dict(self.request))
        except RequestRefused as err:  # the caller's own request is unusable
            raise CompletionError("LLM_REQUEST_INVALID", f"the request sent is not a valid request: {err}") from err


@dataclass(frozen=True)
class VerifiedCompletion:
    text: str
    completion_ids: tuple[int, ...]
    prompt_ids: tuple[int, ...]
    finish_reason: str
    record: RequestRecord
    statement: Statement
    receipt: bytes
    bundle_digest: bytes


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise CompletionError("LLM_RESPONSE_MALFORMED", f"expected {what} as base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise CompletionError("LLM_RESPONSE_MALFORMED", f"{what} is not valid base64") from err


def _ids(value: Any, what: str) -> tuple[int, ...]:
    if (
        not isinstance(value, list)
        or len(value) > MAX_IDS
        or not all(type(t) is int and 0 <= t < 1 << 31 for t in value)
    ):
        raise CompletionError("LLM_RESPONSE_MALFORMED", f"expected {what} as a list of token ids")
    return tuple(value)


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CompletionError("LLM_RESPONSE_MALFORMED", f"expected {what} to be an object")
    return value


def _open(raw: bytes, expected: ChatExpectation, seals: dict[bytes, BatchRoot] | None = None) -> Statement:
    return open_receipt(
        raw, public_key=expected.public_key, attestation_digest=expected.attestation_digest, verified_seals=seals
    ).statement


def _check(
    statement: Statement, expected: ChatExpectation, op: str, inputs: Any, outputs: Any, params: Any, floor: int
) -> None:
    check_statement(
        statement,
        ReceiptExpectation(
            models=expected.bundles, inputs=inputs, outputs=outputs, nonce=expected.nonce, op=op, params=params,
            min_seq=floor, not_before_ms=expected.not_before_ms,
        ),
    )  # fmt: skip


def _text_of(endpoint: Endpoint, choice: dict[str, Any], *, delta: bool) -> str:
    if endpoint is Endpoint.CHAT:
        holder = _obj(choice.get("delta" if delta else "message"), "delta" if delta else "message")
        content = holder.get("content")
        if content is None and delta:
            return ""
    else:
        content = choice.get("text")
    if not isinstance(content, str):
        raise CompletionError("LLM_RESPONSE_MALFORMED", "expected the choice's text as a string")
    return content


def _usage_matches(usage: Any, prompt: int, completion: int) -> None:
    expected = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if not isinstance(usage, dict) or {k: usage.get(k) for k in expected} != expected:
        raise CompletionError("LLM_USAGE_MISMATCH", f"expected usage {expected}, found {usage!r}")


def verify_completion(response: Mapping[str, Any], expected: ChatExpectation) -> VerifiedCompletion:
    """A plain (non-stream) chat or text completion: receipt, record, prompt/completion ids, text, usage."""
    sent = expected.parsed()
    if sent.stream:
        raise CompletionError("LLM_REQUEST_INVALID", "the request asked for a stream; verify it with StreamVerifier")
    evidence = _obj(response.get("trustdial"), "trustdial")
    choices = response.get("choices")
    if not isinstance(choices, list) or len(choices) != 1:
        raise CompletionError("LLM_RESPONSE_MALFORMED", "expected exactly one choice")
    choice = _obj(choices[0], "choice")
    text = _text_of(expected.endpoint, choice, delta=False)
    finish = choice.get("finish_reason")
    record_raw = _b64(evidence.get("request"), "trustdial.request")
    record = check_record(record_raw, sent)
    prompt_ids = _ids(evidence.get("prompt_ids"), "prompt_ids")
    completion_ids = _ids(evidence.get("completion_ids"), "completion_ids")
    if evidence.get("seed") != record.seed:
        raise CompletionError(
            "LLM_SEED_MISMATCH", f"the response reports seed {evidence.get('seed')!r}, the record {record.seed}"
        )
    receipt = _b64(evidence.get("receipt"), "trustdial.receipt")
    statement = _open(receipt, expected)
    if not isinstance(finish, str):
        raise CompletionError("LLM_RESPONSE_MALFORMED", "expected finish_reason as a string")
    params = completion_params(finish, len(prompt_ids), len(completion_ids), record.seed, 0)
    _check(
        statement, expected, OP_COMPLETION, completion_inputs(record_raw, prompt_ids),
        completion_outputs(completion_ids, text), params, expected.min_seq,
    )  # fmt: skip
    _usage_matches(response.get("usage"), len(prompt_ids), len(completion_ids))
    if response.get("model") != sent.model:
        raise CompletionError("LLM_MODEL_NAME", f"expected model {sent.model!r}, found {response.get('model')!r}")
    return VerifiedCompletion(text, completion_ids, prompt_ids, finish, record, statement, receipt, statement.model)


@dataclass
class StreamVerifier:
    """Check a stream's events in order. Each call either returns (the event may be released) or raises."""

    expected: ChatExpectation
    _sent: ParsedRequest | None = None
    _record_raw: bytes = b""
    _record: RequestRecord | None = None
    _prompt_ids: tuple[int, ...] = ()
    _digest: bytes = b""
    _chain: bytes = b""
    _index: int = -1
    _seq: int = 0
    _ids: list[int] = field(default_factory=list)
    _text: list[str] = field(default_factory=list)
    _finish: str | None = None
    _bundle: bytes = b""
    _seals: dict[bytes, BatchRoot] = field(default_factory=dict)  # one signature check per micro-batch
    done: bool = False
    result: VerifiedCompletion | None = None

    def __post_init__(self) -> None:
        self._sent = self.expected.parsed()
        if not self._sent.stream:
            raise CompletionError("LLM_REQUEST_INVALID", "the request did not ask for a stream")

    def check_event(self, event: Mapping[str, Any]) -> None:
        if self.done:
            raise CompletionError("LLM_STREAM_AFTER_END", "an event arrived after the stream's final receipt")
        if "error" in event:
            raise CompletionError("LLM_STREAM_ERROR", f"the service ended the stream with an error: {event['error']!r}")
        evidence = _obj(event.get("trustdial"), "trustdial")
        if evidence.get("final") is True:
            self._final(event, evidence)
            return
        index = evidence.get("index")
        if index != self._index + 1 or self._finish is not None:
            raise CompletionError(
                "LLM_CHUNK_ORDER", f"expected chunk {self._index + 1}, found {index!r} (dropped, reordered or extra)"
            )
        choices = event.get("choices")
        if not isinstance(choices, list) or len(choices) != 1:
            raise CompletionError("LLM_RESPONSE_MALFORMED", "expected exactly one choice in a chunk")
        choice = _obj(choices[0], "choice")
        text = _text_of(self.expected.endpoint, choice, delta=True)
        finish = choice.get("finish_reason")
        if finish is not None and not isinstance(finish, str):
            raise CompletionError("LLM_RESPONSE_MALFORMED", "expected finish_reason as a string or null")
        receipt = _b64(evidence.get("receipt"), "trustdial.receipt")
        if index == 0:
            if text or finish is not None:
                raise CompletionError("LLM_RESPONSE_MALFORMED", "chunk 0 carries no text")
            self._record_raw = _b64(evidence.get("request"), "trustdial.request")
            if self._sent is None:  # set in __post_init__; explicit so python -O cannot drop it
                raise CompletionError("LLM_REQUEST_INVALID", "the stream verifier has no request")
            self._record = check_record(self._record_raw, self._sent)
            if evidence.get("seed") != self._record.seed:
                raise CompletionError("LLM_SEED_MISMATCH", "the stream reports a seed the record does not hold")
            self._prompt_ids = _ids(evidence.get("prompt_ids"), "prompt_ids")
            self._digest = input_digest(self._record_raw, self._prompt_ids)
            chain = chain_start(self._digest)
        else:
            token_ids = _ids(evidence.get("token_ids"), "token_ids")
            chain = chain_next(self._chain, index, token_ids, text, finish)
        statement = _open(receipt, self.expected, self._seals)
        floor = max(self.expected.min_seq, self._seq + 1)
        _check(
            statement,
            self.expected,
            OP_CHUNK,
            chunk_inputs(self._digest),
            chunk_outputs(chain),
            {"index": index},
            floor,
        )
        self._bundle = statement.model
        self._seq = statement.seq
        self._chain = chain
        self._index = index
        if index > 0:
            self._ids.extend(token_ids)
            self._text.append(text)
            self._finish = finish

    def _final(self, event: Mapping[str, Any], evidence: dict[str, Any]) -> None:
        if self._finish is None or self._record is None:
            raise CompletionError("LLM_STREAM_TRUNCATED", "the final receipt came before the chunk with finish_reason")
        if event.get("choices") != []:
            raise CompletionError("LLM_RESPONSE_MALFORMED", "the final event carries no choices")
        receipt = _b64(evidence.get("receipt"), "trustdial.receipt")
        statement = _open(receipt, self.expected, self._seals)
        text = "".join(self._text)
        params = completion_params(self._finish, len(self._prompt_ids), len(self._ids), self._record.seed, self._index)
        _check(
            statement, self.expected, OP_COMPLETION, completion_inputs(self._record_raw, self._prompt_ids),
            completion_outputs(self._ids, text), params, self._seq + 1,
        )  # fmt: skip
        if statement.model != self._bundle:
            raise CompletionError("RECEIPT_MODEL_MISMATCH", "the final receipt names another bundle than the chunks")
        if self._record.include_usage:
            _usage_matches(event.get("usage"), len(self._prompt_ids), len(self._ids))
        elif event.get("usage") is not None:
            raise CompletionError("LLM_USAGE_MISMATCH", "usage was not asked for")
        self.done = True
        self.result = VerifiedCompletion(
            text, tuple(self._ids), self._prompt_ids, self._finish, self._record, statement, receipt, statement.model
        )

    def finish(self) -> VerifiedCompletion:
        """Call at the end of the stream: refuses a stream that ended before its final receipt."""
        if not self.done or self.result is None:
            raise CompletionError(
                "LLM_STREAM_TRUNCATED", f"the stream ended after chunk {self._index} without its receipt"
            )
        return self.result
