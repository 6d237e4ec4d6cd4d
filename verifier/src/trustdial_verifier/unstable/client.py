"""The verifying HTTP client of an enclave (attestation, receipts, time budget).

Unstable: see :mod:`trustdial_verifier.unstable`."""

from trustdial_verifier._internal.client import Client, ExpectedEnclave

__all__ = ["Client", "ExpectedEnclave"]
