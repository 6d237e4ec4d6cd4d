"""What the enclave's statements about a completion commit to (docs/llm-receipts.md §4-§5).

A completion is one ``llm-completion`` statement (receipt format v1, docs/receipts.md): ``model`` = the bundle
digest; ``input`` = the tensor commitment of ``{"prompt_ids": int64[n], "request": uint8[record]}``; ``output`` =
that of ``{"completion_ids": int64[m], "text": uint8[utf-8]}``; ``params`` = finish_reason, prompt_tokens,
completion_tokens, seed and (streams) the number of chunks. A stream adds one ``llm-chunk`` statement per chunk:
``input`` = the commitment of ``{"input_digest": uint8[32]}`` (the completion's input digest), ``output`` = that of
``{"chain": uint8[32]}``, params ``{"index": i}``, where the chain runs over every chunk so far.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

import cbor2

from trustdial_verifier._internal.tensors import Tensor, commit_tensors

OP_COMPLETION = "llm-completion"
OP_CHUNK = "llm-chunk"
CHAIN_PREFIX = b"trustdial/llm-chain/v1\x00"


def ids_tensor(ids: Sequence[int]) -> Tensor:
    return Tensor("int64", (len(ids),), struct.pack(f"<{len(ids)}q", *ids))


def bytes_tensor(data: bytes) -> Tensor:
    return Tensor("uint8", (len(data),), data)


def completion_inputs(record: bytes, prompt_ids: Sequence[int]) -> dict[str, Tensor]:
    return {"prompt_ids": ids_tensor(prompt_ids), "request": bytes_tensor(record)}


def completion_outputs(completion_ids: Sequence[int], text: str) -> dict[str, Tensor]:
    return {"completion_ids": ids_tensor(completion_ids), "text": bytes_tensor(text.encode("utf-8"))}


def input_digest(record: bytes, prompt_ids: Sequence[int]) -> bytes:
    return commit_tensors(completion_inputs(record, prompt_ids))


def chunk_inputs(digest: bytes) -> dict[str, Tensor]:
    return {"input_digest": bytes_tensor(digest)}


def chunk_outputs(chain: bytes) -> dict[str, Tensor]:
    return {"chain": bytes_tensor(chain)}


def chain_start(digest: bytes) -> bytes:
    """c_0 = SHA-256(CHAIN_PREFIX || input digest): the chain of chunk 0 (the role chunk, no tokens)."""
    return hashlib.sha256(CHAIN_PREFIX + digest).digest()


def chunk_payload(index: int, token_ids: Sequence[int], text: str, finish_reason: str | None) -> bytes:
    """Deterministic CBOR array [index, [token ids], text, finish_reason or null]."""
    return cbor2.dumps([index, list(token_ids), text, finish_reason], canonical=True)


def chain_next(previous: bytes, index: int, token_ids: Sequence[int], text: str, finish_reason: str | None) -> bytes:
    """c_i = SHA-256(c_{i-1} || chunk payload i)."""
    return hashlib.sha256(previous + chunk_payload(index, token_ids, text, finish_reason)).digest()


def completion_params(
    finish_reason: str, prompt_tokens: int, completion_tokens: int, seed: int, chunks: int
) -> dict[str, int | str]:
    """``chunks`` is the number of chunk statements of a stream (0 for a plain response)."""
    return {
        "finish_reason": finish_reason,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "seed": seed,
        "chunks": chunks,
    }
