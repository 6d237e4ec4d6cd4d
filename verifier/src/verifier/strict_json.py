"""Hooks for ``json.loads`` on evidence: a duplicate object key or a non-standard constant (``NaN``,
``Infinity``, ``-Infinity``) raises ``ValueError`` instead of being silently resolved."""

from __future__ import annotations

from typing import Any


def reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: the object as a dict, or ``ValueError`` when a key repeats."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def reject_constant(name: str) -> Any:
    """``parse_constant``: always ``ValueError``."""
    raise ValueError(f"non-standard JSON constant {name}")
