"""The pinned AWS Nitro Enclaves Root-G1 certificate shipped inside this package.

The PEM is checked against its published SHA-256 fingerprint when this module is imported,
so a tampered copy makes the verifier refuse to load rather than trust the wrong root.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

AWS_NITRO_ROOT_G1_SHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
"""SHA-256 of the DER encoding, as published by AWS (``64:1A:03:21:…:79:BB:5B``)."""

_PEM_NAME = "aws_nitro_root_g1.pem"


class PinnedRootError(RuntimeError):
    """The shipped root certificate does not match its pinned fingerprint (broken install)."""


def _load_pinned_root() -> x509.Certificate:
    pem = resources.files("trustdial_verifier._internal.attestation.roots").joinpath(_PEM_NAME).read_bytes()
    certificate = x509.load_pem_x509_certificate(pem)
    found = hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()
    if found != AWS_NITRO_ROOT_G1_SHA256:
        raise PinnedRootError(f"expected AWS Nitro Root-G1 with SHA-256 {AWS_NITRO_ROOT_G1_SHA256}, found {found}")
    return certificate


AWS_NITRO_ROOT_G1: x509.Certificate = _load_pinned_root()
