"""Rejection type for EIF files. Codes (stable):

EIF_TRUNCATED, EIF_BAD_MAGIC, EIF_UNSUPPORTED_VERSION, EIF_BAD_FLAGS, EIF_BAD_SECTION_COUNT,
EIF_UNKNOWN_SECTION_TYPE, EIF_BAD_SECTION_FLAGS, EIF_SECTION_PAST_EOF, EIF_SECTION_TOO_LARGE,
EIF_HEADER_TABLE_MISMATCH, EIF_SECTION_DUPLICATE, EIF_SECTION_ORDER, EIF_SECTION_MISSING, EIF_BAD_CRC,
EIF_BAD_METADATA, EIF_BAD_SIGNATURE_SECTION, EIF_SIGNATURE_INVALID.
"""

from __future__ import annotations

from trustdial_verifier.errors import VerificationError


class EifError(VerificationError):
    """The file is not a well-formed EIF (or its signature section does not verify)."""
