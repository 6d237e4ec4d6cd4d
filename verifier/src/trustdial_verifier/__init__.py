"""trustdial's standalone verifier: check attestation documents, EIF measurements,
receipts and proofs offline, against published measurements, failing closed."""

from trustdial_verifier.errors import InputError, VerificationError

__all__ = ["InputError", "VerificationError"]
__version__ = "0.1.0"
