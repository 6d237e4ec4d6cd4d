"""The one strict, bounded JSON reader for everything untrusted the verifier reads as JSON:
composite receipts, manifests, gateway requests and responses, proofs, ezkl settings,
artifacts.json, tensor files, EIF metadata.

Refused, each with a stable code: more than ``max_bytes`` of input (``JSON_TOO_LARGE``, checked
before decoding), bytes that are not UTF-8 or text that is not JSON (``JSON_MALFORMED``), nesting
deeper than ``max_depth`` (``JSON_TOO_DEEP``), a repeated object key (``JSON_DUPLICATE_KEY``),
``NaN``/``Infinity`` and numbers that overflow to them such as ``1e400`` (``JSON_NON_FINITE``),
integers of more than ``max_int_digits`` digits, checked on the digit string before any
conversion so Python's int-string limit is never reached (``JSON_INTEGER_TOO_LARGE``), and
strings or keys holding a lone UTF-16 surrogate such as ``"\\ud800"``, which no UTF-8 text can
carry (``JSON_LONE_SURROGATE``).

Error reasons name positions, lengths and limits, never the decoded values themselves. Callers
map :class:`JsonError` to their own code (e.g. ``MANIFEST_BAD_JSON``) keeping this reason.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from trustdial_verifier.errors import VerificationError

MAX_BYTES = 1 << 20
MAX_DEPTH = 64
#: 2**64 has 20 digits; 40 leaves room for every integer trustdial formats carry.
MAX_INT_DIGITS = 40
#: Longest number literal accepted as a float (a float64 needs at most 17 significant digits).
MAX_FLOAT_CHARS = 64

_SURROGATE = re.compile("[\ud800-\udfff]")
#: A ``\\u`` escape of a surrogate code unit; without one in the text no decoded string can hold one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonError(VerificationError):
    """The bytes are not JSON this reader accepts (codes in the module docstring)."""


def loads(
    data: bytes | str,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_int_digits: int = MAX_INT_DIGITS,
) -> Any:
    """Decode one JSON document strictly; raise :class:`JsonError` on anything the module refuses."""
    if isinstance(data, str):
        size = len(data)
        if size > max_bytes:  # a str of n characters is at least n bytes of UTF-8
            raise JsonError("JSON_TOO_LARGE", f"expected at most {max_bytes} bytes of JSON, found more")
        text = data
    elif isinstance(data, bytes | bytearray | memoryview):
        if len(data) > max_bytes:
            raise JsonError("JSON_TOO_LARGE", f"expected at most {max_bytes} bytes of JSON, found {len(data)}")
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as err:
            raise JsonError(
                "JSON_MALFORMED", f"expected UTF-8 text, found an invalid byte at offset {err.start}"
            ) from None
    else:
        raise JsonError("JSON_MALFORMED", f"expected JSON bytes or text, found {type(data).__name__}")

    def parse_int(digits: str) -> int:
        if len(digits.lstrip("-")) > max_int_digits:
            raise JsonError(
                "JSON_INTEGER_TOO_LARGE",
                f"expected integers of at most {max_int_digits} digits, found one of {len(digits)} characters",
            )
        return int(digits)

    def parse_float(literal: str) -> float:
        if len(literal) > MAX_FLOAT_CHARS:
            raise JsonError(
                "JSON_NON_FINITE",
                f"expected number literals of at most {MAX_FLOAT_CHARS} characters, found {len(literal)}",
            )
        value = float(literal)
        if not math.isfinite(value):
            raise JsonError(
                "JSON_NON_FINITE",
                f"expected finite numbers, found a literal of {len(literal)} characters that overflows float64",
            )
        return value

    def parse_constant(name: str) -> Any:
        raise JsonError("JSON_NON_FINITE", f"expected standard JSON numbers, found the constant {name}")

    try:
        value = json.loads(
            text,
            object_pairs_hook=reject_duplicate_keys,
            parse_int=parse_int,
            parse_float=parse_float,
            parse_constant=parse_constant,
        )
    except JsonError:
        raise
    except json.JSONDecodeError as err:
        raise JsonError("JSON_MALFORMED", f"expected JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except RecursionError:
        raise JsonError("JSON_TOO_DEEP", f"expected nesting of at most {max_depth} levels, found far deeper") from None
    except ValueError as err:  # a duplicate key from the hook (its message names no value)
        raise JsonError("JSON_DUPLICATE_KEY", str(err)) from None
    _check_tree(value, max_depth, check_surrogates=_SURROGATE_ESCAPE.search(text) is not None)
    return value


def _check_tree(value: Any, max_depth: int, *, check_surrogates: bool) -> None:
    """Depth and lone surrogates, without recursion (the tree may be as deep as the C scanner allows)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= max_depth:
                raise JsonError("JSON_TOO_DEEP", f"expected nesting of at most {max_depth} levels, found deeper")
            if isinstance(item, dict):
                if check_surrogates:
                    for key in item:
                        _check_text(key)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
        elif check_surrogates and isinstance(item, str):
            _check_text(item)


def _check_text(text: str) -> None:
    found = _SURROGATE.search(text)
    if found is not None:
        raise JsonError(
            "JSON_LONE_SURROGATE",
            f"expected Unicode text, found a lone UTF-16 surrogate at character {found.start()} of a string",
        )


def reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: the object as a dict, or ``ValueError`` when a key repeats (the key is not quoted:
    it is attacker text)."""
    result: dict[str, Any] = {}
    for position, (key, value) in enumerate(pairs):
        if key in result:
            raise ValueError(f"expected unique object keys, found key number {position + 1} repeating an earlier one")
        result[key] = value
    return result


def reject_constant(name: str) -> Any:
    """``parse_constant``: always ``ValueError``."""
    raise ValueError(f"non-standard JSON constant {name}")


def dumps_report(value: Any) -> str:
    """JSON text of a report for people and machines: ``allow_nan=False``, so it is always valid JSON
    (a non-finite float raises ``ValueError`` instead of printing ``Infinity``)."""
    return json.dumps(value, allow_nan=False)
