"""Measurement manifests: the schema, parsing, and the signed (COSE_Sign1) form a signer produces.

Unstable: see :mod:`trustdial_verifier.unstable`."""

from trustdial_verifier._internal.measurements import (
    SCHEMA_ID,
    load_signed_manifest,
    parse_manifest,
    signed_payload,
    to_be_signed,
)
from trustdial_verifier._internal.measurements.manifest import IMAGE_INPUTS
from trustdial_verifier._internal.measurements.signed import encode_signed_manifest, protected_header

__all__ = [
    "IMAGE_INPUTS",
    "SCHEMA_ID",
    "encode_signed_manifest",
    "load_signed_manifest",
    "parse_manifest",
    "protected_header",
    "signed_payload",
    "to_be_signed",
]
