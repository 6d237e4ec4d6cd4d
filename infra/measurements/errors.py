"""Codes (stable): MANIFEST_CREATE_INPUT, SIGNER_KEY_INVALID, KMS_KEY_UNSUITABLE,
KMS_SIGNATURE_MISMATCH, PUBLISH_PRECONDITION, PUBLISH_FAILED."""

from __future__ import annotations

from trustdial_verifier.errors import InputError


class MeasurementsError(InputError):
    """Creating, signing or publishing a manifest could not be carried out."""
