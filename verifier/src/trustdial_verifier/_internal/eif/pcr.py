"""PCR arithmetic: every Nitro PCR is extended once from 48 zero bytes.

PCR0/1/2/8 extend with a SHA-384 *digest* of their content; PCR3 (parent role ARN) and PCR4
(parent instance id) extend with the raw UTF-8 string, as the AWS Nitro Enclaves guide documents.
"""

from __future__ import annotations

import hashlib

ZERO_PCR = bytes(48)


def extend_pcr(value: bytes, previous: bytes = ZERO_PCR) -> bytes:
    """SHA-384(previous ‖ value)."""
    if len(previous) != 48:
        raise ValueError(f"a PCR is 48 bytes, got {len(previous)}")
    return hashlib.sha384(previous + value).digest()


def pcr_from_digest(content_digest: bytes) -> str:
    """PCR (lowercase hex) for content whose SHA-384 is ``content_digest``."""
    if len(content_digest) != 48:
        raise ValueError(f"expected a 48-byte SHA-384 digest, got {len(content_digest)} bytes")
    return extend_pcr(content_digest).hex()


def pcr3_for_role_arn(role_arn: str) -> str:
    """PCR3: the IAM role ARN of the parent instance, extended as a raw string."""
    if not role_arn:
        raise ValueError("role ARN must not be empty")
    return extend_pcr(role_arn.encode("utf-8")).hex()


def pcr4_for_instance_id(instance_id: str) -> str:
    """PCR4: the parent EC2 instance id, extended as a raw string."""
    if not instance_id:
        raise ValueError("instance id must not be empty")
    return extend_pcr(instance_id.encode("utf-8")).hex()
