"""The exception of sealed-model handling: every refusal has a stable ``code`` (docs/sealed-models.md §8)."""

from __future__ import annotations

from trustdial_verifier.errors import InputError


class SealedModelError(InputError):
    """A sealed model could not be sealed, fetched, unwrapped or checked; nothing was loaded from it.

    An :class:`InputError` so every command maps it to exit status 2 with ``[CODE] reason``."""
