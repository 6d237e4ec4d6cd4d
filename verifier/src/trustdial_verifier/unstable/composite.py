"""Composite (hybrid TEE/ZK) receipts: policy documents and their canonical form, the per-step
nonce derivation, the receipt format name.

Unstable: see :mod:`trustdial_verifier.unstable`."""

from trustdial_verifier._internal.composite.nonce import derive_step_nonce
from trustdial_verifier._internal.composite.policy import (
    MODE_EVIDENCE,
    MODE_TEE,
    MODE_TEE_ZK,
    POLICY_FORMAT,
    VISIBILITY_PRIVATE,
    VISIBILITY_PUBLIC,
    PipelinePolicy,
    canonical_policy,
    load_policy,
    policy_sha256,
)
from trustdial_verifier._internal.composite.receipt import RECEIPT_FORMAT

__all__ = [
    "MODE_EVIDENCE",
    "MODE_TEE",
    "MODE_TEE_ZK",
    "POLICY_FORMAT",
    "RECEIPT_FORMAT",
    "VISIBILITY_PRIVATE",
    "VISIBILITY_PUBLIC",
    "PipelinePolicy",
    "canonical_policy",
    "derive_step_nonce",
    "load_policy",
    "policy_sha256",
]
