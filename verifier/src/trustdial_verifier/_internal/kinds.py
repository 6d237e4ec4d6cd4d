"""The closed sets of names the evidence formats use, as ``StrEnum`` so that a typo is a type error.

Members are ``str``: they compare equal to, hash like and serialize as the literals the formats carry
(``"tee"``, ``"tee+zk"``, ``"infer"``), so parsed documents and these names mix freely.
"""

from __future__ import annotations

from enum import StrEnum


class TrustMode(StrEnum):
    """How a pipeline segment's integrity is established (docs/pipeline.md)."""

    TEE = "tee"  # an attested enclave signed the step
    ZK = "zk"  # a zero-knowledge proof of the step verified
    TEE_ZK = "tee+zk"  # both, about the same tensors


class EvidenceKind(StrEnum):
    """One kind of evidence a composite receipt's step carries (docs/composite-receipts.md)."""

    TEE = "tee"
    ZK = "zk"


class ReceiptOperation(StrEnum):
    """What a TEE receipt's statement says the enclave did (docs/receipts.md, docs/llm-receipts.md)."""

    INFER = "infer"
    GENERATE = "generate"
    LLM_COMPLETION = "llm-completion"
    LLM_CHUNK = "llm-chunk"
