"""Synth-time configuration errors with stable codes (documented in the README's "Deploy to AWS" section)."""

from __future__ import annotations

from trustdial_verifier.errors import InputError


class InfraConfigError(InputError):
    """The deployment configuration cannot be synthesized safely.

    Codes: ``BAD_PCR`` (not 96 lowercase hex characters), ``DEBUG_PCR`` (all-zero debug-mode value),
    ``NOT_ENCLAVE_CAPABLE`` (instance type cannot host a Nitro enclave), ``BAD_INSTANCE_TYPE`` (unparseable
    instance type), ``BAD_CONFIG`` (unknown key, wrong type or out-of-range value), ``CONFIG_UNREADABLE``.
    """
