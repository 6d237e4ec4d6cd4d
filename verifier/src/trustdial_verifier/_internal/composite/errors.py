"""Error types of the composite verifier. Codes are stable; docs/composite-receipts.md lists them."""

from __future__ import annotations

from trustdial_verifier.errors import InputError, VerificationError


class PolicyFileError(InputError):
    """A pipeline policy file (pipeline.toml) is unreadable or does not follow the schema."""


class CompositeError(VerificationError):
    """A composite receipt was examined and rejected."""
