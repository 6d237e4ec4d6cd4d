"""Build-side failures. Codes (stable): EIF_BUILD_INPUT, EIF_BUILD_METADATA, EIF_BUILD_SIGNING,
EIF_INPUT_CHANGED, TAR_MALFORMED, TAR_UNSAFE_PATH, TAR_UNSUPPORTED_MEMBER, TAR_DUPLICATE_MEMBER,
IMAGE_CONFIG_INVALID, IMAGE_ARCHIVE_INVALID, BLOB_UNPINNED, BLOB_MISSING."""

from __future__ import annotations

from trustdial_verifier.errors import InputError


class BuildError(InputError):
    """The build inputs are unusable; nothing was written."""
