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
    """A short description of a value from the sender, for the "found ..." part of a reason.

    Never calls ``repr`` or ``str`` on a structure: an attacker's value may be huge, nested or (from a
    lenient decoder) share sub-structures, and rendering it could take unbounded time or fail (integers
    past Python's int-string limit). Text and bytes are shown cut to ``limit`` characters, small
    integers in full, containers by type and size only.
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 128:
            return f"an integer of {value.bit_length()} bits"
        return repr(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str | bytes | bytearray):
        text = repr(value[:limit])
        return text if len(value) <= limit and len(text) <= limit else text[:limit] + f"... ({len(value)} long)"
    if isinstance(value, list | tuple | dict | set | frozenset):
        return f"{type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"
