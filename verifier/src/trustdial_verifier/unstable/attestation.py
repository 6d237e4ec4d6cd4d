"""Attestation documents: the verification call and the policies the enclave's own tools use.

Unstable: see :mod:`trustdial_verifier.unstable`."""

from trustdial_verifier._internal.attestation.verify import IntermediateCache, PcrsEqual, verify_attestation

__all__ = ["IntermediateCache", "PcrsEqual", "verify_attestation"]
