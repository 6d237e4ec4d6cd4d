"""What the caller of the composite checks decides: attestation age, verification time, maximum age, request nonce."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_ATTESTATION_AGE_S = 3 * 3600


@dataclass(frozen=True)
class ChainOptions:
    """``max_attestation_age_s``: how long after its key's attestation a TEE receipt may be signed.
    ``at_ms`` + ``max_age_s``: the verification time and how old (by enclave clock) the inference
    may be then; without ``max_age_s`` the receipt's age is not limited (auditing old evidence).
    ``request_nonce`` (64 lowercase hex digits): the nonce the caller sent; the receipt must state it
    and at least one enclave step must have signed a step nonce derived from it (proofs sign none),
    else an earlier genuine receipt could be replayed as the answer to this request."""

    max_attestation_age_s: int = DEFAULT_MAX_ATTESTATION_AGE_S
    at_ms: int | None = None
    max_age_s: int | None = None
    request_nonce: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
