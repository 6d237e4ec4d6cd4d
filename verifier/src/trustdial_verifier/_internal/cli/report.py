"""How verify subcommands report: one JSON object with --json, short text otherwise,
and the exit status contract (0 valid, 1 rejected, 2 usage or I/O error)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

from trustdial_verifier.errors import InputError, VerificationError

EXIT_VALID = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2


def run_check(
    check: Callable[[], Mapping[str, Any]],
    *,
    as_json: bool,
    render: Callable[[Mapping[str, Any]], str | None] | None = None,
) -> int:
    """Run ``check``; print its result or the rejection; return the exit status.

    ``check`` returns the fields of a successful result (``valid`` is added here). Any
    :class:`VerificationError` is a rejection, :class:`InputError` or :class:`OSError`
    a usage or I/O error. Nothing else is caught: an unexpected exception is a bug and
    must surface, never be reported as valid. Without ``as_json``, ``render`` may turn a
    successful result into its own text (returning None keeps the default listing).
    """
    try:
        fields = check()
    except VerificationError as err:
        _emit({"valid": False, "code": err.code, "reason": err.reason}, as_json, stream=sys.stdout)
        return EXIT_REJECTED
    except InputError as err:
        _emit({"valid": False, "code": err.code, "reason": err.reason}, as_json, stream=_usage_stream(as_json))
        return EXIT_USAGE
    except OSError as err:
        _emit({"valid": False, "code": "IO_ERROR", "reason": str(err)}, as_json, stream=_usage_stream(as_json))
        return EXIT_USAGE
    report = {"valid": True, **fields}
    try:
        _json(report)
    except ValueError:  # a non-finite number reached a report: refuse rather than print invalid JSON
        _emit(
            {"valid": False, "code": "REPORT_NOT_FINITE", "reason": "the result holds a number JSON cannot carry"},
            as_json,
            stream=sys.stdout,
        )
        return EXIT_REJECTED
    text = render(fields) if render is not None and not as_json else None
    if text is not None:
        sys.stdout.write(text)
        return EXIT_VALID
    _emit(report, as_json, stream=sys.stdout)
    return EXIT_VALID


def _json(obj: Any) -> str:
    """Always valid JSON (RFC 8259): ``allow_nan=False`` raises instead of printing ``NaN``/``Infinity``."""
    return json.dumps(obj, sort_keys=False, allow_nan=False)


def _usage_stream(as_json: bool) -> Any:
    """Machines read the one JSON object from stdout; people read errors on stderr."""
    return sys.stdout if as_json else sys.stderr


def _emit(obj: Mapping[str, Any], as_json: bool, *, stream: Any) -> None:
    if as_json:
        stream.write(_json(obj) + "\n")
        return
    if obj.get("valid"):
        stream.write("VALID\n")
        for key, value in obj.items():
            if key != "valid":
                stream.write(f"  {key}: {_text(value)}\n")
    else:
        stream.write(f"REJECTED [{obj.get('code')}] {obj.get('reason')}\n")


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, allow_nan=False)
    return str(value)
