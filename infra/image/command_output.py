"""How ``trustdial`` build commands report: fields as text or one JSON object; typed errors
become ``error [CODE] reason`` on stderr (and ``{"error", "reason"}`` with --json); exit status
0 done, 1 rejected evidence, 2 unusable input or I/O error."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from verifier.errors import InputError, VerificationError


def report(fields: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(fields) + "\n")
    else:
        for key, value in fields.items():
            sys.stdout.write(f"{key}: {value}\n")


def guarded(action: Callable[[], dict[str, Any]], as_json: bool) -> int:
    try:
        report(action(), as_json)
    except (InputError, VerificationError) as err:
        if as_json:
            sys.stdout.write(json.dumps({"error": err.code, "reason": err.reason}) + "\n")
        sys.stderr.write(f"error [{err.code}] {err.reason}\n")
        return 2 if isinstance(err, InputError) else 1
    except OSError as err:
        sys.stderr.write(f"error [IO_ERROR] {err}\n")
        return 2
    return 0
