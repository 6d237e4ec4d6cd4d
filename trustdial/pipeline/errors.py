"""Operator-side pipeline errors: stable codes, listed in docs/pipeline.md."""

from __future__ import annotations

from trustdial_verifier.errors import InputError


class PipelineError(InputError):
    """A pipeline could not be split or run as specified (bad cut, missing tensor, mismatch)."""
