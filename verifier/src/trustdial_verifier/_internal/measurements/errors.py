"""Rejection type for measurement manifests. Codes (stable):

MANIFEST_NOT_SIGNED (not a COSE_Sign1 / no signature), MANIFEST_BAD_ENVELOPE (malformed COSE, including
malformed headers), MANIFEST_BAD_ALGORITHM (not ES384), MANIFEST_UNKNOWN_CRITICAL (``crit`` names a header
this verifier does not understand), MANIFEST_BAD_CONTENT_TYPE (a content type other than the manifest's),
MANIFEST_BAD_SIGNATURE (signature does not verify with the given key: tampered or wrong key), MANIFEST_BAD_JSON,
MANIFEST_SCHEMA (field missing, unknown, or of the wrong form), MANIFEST_UNSUPPORTED_SCHEMA (unknown ``schema``
id), MANIFEST_BAD_KEY.
"""

from __future__ import annotations

from trustdial_verifier.errors import VerificationError


class ManifestError(VerificationError):
    """The manifest or its signature was rejected."""
