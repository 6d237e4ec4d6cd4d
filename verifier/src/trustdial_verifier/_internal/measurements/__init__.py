"""Signed measurement manifests: the published record tying an EIF's PCRs to its sources.

``load_signed_manifest(data, public_key)`` checks the COSE_Sign1 (ES384) signature, then the
manifest schema, and returns a :class:`Manifest`; every failure raises :class:`ManifestError`.
"""

from trustdial_verifier._internal.measurements.eif_match import check_eif_matches
from trustdial_verifier._internal.measurements.errors import ManifestError
from trustdial_verifier._internal.measurements.headers import CONTENT_TYPE
from trustdial_verifier._internal.measurements.manifest import SCHEMA_ID, Manifest, parse_manifest
from trustdial_verifier._internal.measurements.signed import (
    load_public_key,
    load_signed_manifest,
    signed_payload,
    to_be_signed,
)

__all__ = [
    "CONTENT_TYPE",
    "SCHEMA_ID",
    "Manifest",
    "ManifestError",
    "check_eif_matches",
    "load_public_key",
    "load_signed_manifest",
    "parse_manifest",
    "signed_payload",
    "to_be_signed",
]
