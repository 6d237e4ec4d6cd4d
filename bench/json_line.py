"""The last line every bench prints: one JSON object, also written (indented) to its results
file with ``--record``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def emit(result: dict[str, Any], path: Path, record: bool) -> None:
    if record:
        path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
