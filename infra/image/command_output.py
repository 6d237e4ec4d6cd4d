"""How ``trustdial`` build commands report: fields as text or one JSON object (``{"ok": true, ...}``);
typed errors and I/O errors become ``error [CODE] reason`` on stderr (and ``{"ok": false, "code",
"reason"}`` on stdout with --json, the shape of every ``trustdial`` command); exit status 0 done,
1 rejected evidence, 2 unusable input or I/O error."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from trustdial_verifier.errors import InputError, VerificationError


def report(fields: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"ok": True, **fields}) + "\n")
    else:
        for key, value in fields.items():
            sys.stdout.write(f"{key}: {value}\n")


def guarded(action: Callable[[], dict[str, Any]], as_json: bool) -> int:
    try:
        report(action(), as_json)
    except (InputError, VerificationError) as err:
        refuse(err.code, err.reason, as_json)
        return 2 if isinstance(err, InputError) else 1
    except OSError as err:
        refuse("IO_ERROR", str(err), as_json)
        return 2
    return 0


def refuse(code: str, reason: str, as_json: bool) -> None:
    """A typed refusal: ``{"ok": false, "code", "reason"}`` on stdout with --json, ``error [CODE] reason`` on stderr."""
    if as_json:
        sys.stdout.write(json.dumps({"ok": False, "code": code, "reason": reason}) + "\n")
    sys.stderr.write(f"error [{code}] {reason}\n")
