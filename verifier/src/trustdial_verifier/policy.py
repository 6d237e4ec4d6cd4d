"""What a caller requires of the evidence (the policies of :mod:`trustdial_verifier`).

Attestation policies each check one thing and compose: ``AllOf([PcrsEqual({...}), NonceEquals(nonce)])``.
An empty ``AllOf``/``AnyOf`` refuses every document (an empty policy never means "anything goes"); the
no-op policy exists only as :class:`UnsafeNoPolicy`. Every policy has one method,
``verify(document, at)``, that returns nothing or raises a :class:`~trustdial_verifier.PolicyError` saying what
was expected and what was found.

A composite receipt's :class:`PipelinePolicy` says which trust mode each model segment must run under; read it
from ``pipeline.toml`` with :func:`load_pipeline_policy` (or bytes with :func:`parse_pipeline_policy`).
"""

from __future__ import annotations

from pathlib import Path

from trustdial_verifier._internal.attestation.policy import (
    AllOf,
    AnyOf,
    AttestationPolicy,
    MaxAge,
    NonceEquals,
    PcrsEqual,
    PublicKeyEquals,
    UnsafeNoPolicy,
    UserDataEquals,
)
from trustdial_verifier._internal.composite.errors import PolicyFileError
from trustdial_verifier._internal.composite.policy import (
    MAX_POLICY_BYTES,
    PipelinePolicy,
    Segment,
    load_policy,
    parse_policy,
)
from trustdial_verifier._internal.composite.policy import policy_sha256 as _policy_sha256
from trustdial_verifier._internal.proof.pins import pins_from_manifest

__all__ = [
    "AllOf",
    "AnyOf",
    "AttestationPolicy",
    "MaxAge",
    "NonceEquals",
    "PcrsEqual",
    "PipelinePolicy",
    "PublicKeyEquals",
    "Segment",
    "UnsafeNoPolicy",
    "UserDataEquals",
    "load_pipeline_policy",
    "parse_pipeline_policy",
    "pins_from_manifest",
    "pipeline_policy_sha256",
]


def load_pipeline_policy(path: Path) -> PipelinePolicy:
    """Read and strictly validate a ``pipeline.toml`` file (docs/pipeline.md).

    Raises :class:`~trustdial_verifier.PolicyFileError` (an :class:`~trustdial_verifier.InputError`) on an
    unreadable, oversized or invalid file."""
    return load_policy(Path(path))


def parse_pipeline_policy(data: bytes) -> PipelinePolicy:
    """Strictly validate a pipeline policy given as the bytes of a ``pipeline.toml``."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise PolicyFileError("POLICY_TOML_INVALID", f"expected the policy as bytes, found {type(data).__name__}")
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyFileError("POLICY_TOO_LARGE", f"expected at most {MAX_POLICY_BYTES} bytes, found {len(data)}")
    return parse_policy(bytes(data))


def pipeline_policy_sha256(policy: PipelinePolicy) -> str:
    """A policy's identity: SHA-256 (hex) over its canonical JSON, what manifests and receipts pin."""
    return _policy_sha256(policy)
