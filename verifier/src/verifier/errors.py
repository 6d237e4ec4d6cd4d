"""Failure types shared by every check in the verifier.

Every rejection raises :class:`VerificationError` (or a subclass) carrying a stable,
machine-readable ``code`` and a human ``reason`` saying what was expected and what was
found. Callers and the CLI branch on ``code``; the wording of ``reason`` may change.
"""

from __future__ import annotations


class VerificationError(Exception):
    """Evidence was examined and rejected. Never means "could not decide"."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class InputError(Exception):
    """The caller's request could not be carried out (unreadable file, bad argument).

    Distinct from a rejection: the CLI maps it to exit status 2, rejections to 1.
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def describe_value(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for the "found ..." part of a reason: values come from the
    sender and may be arbitrarily large."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
