"""COSE_Sign1 for signers: Sig_structure1, envelope and header encoding, DER to raw ``r || s``, the
algorithm identifiers. The same module the verifier checks with.

Unstable: see :mod:`trustdial_verifier.unstable`."""

from trustdial_verifier._internal.cose_sign1 import (
    ALG_EDDSA,
    ALG_ES256,
    ALG_ES384,
    ALG_ES512,
    ECDSA_ALGORITHMS,
    encode_cose_sign1,
    encode_header,
    raw_ecdsa_signature,
    sig_structure,
)

__all__ = [
    "ALG_EDDSA",
    "ALG_ES256",
    "ALG_ES384",
    "ALG_ES512",
    "ECDSA_ALGORITHMS",
    "encode_cose_sign1",
    "encode_header",
    "raw_ecdsa_signature",
    "sig_structure",
]
