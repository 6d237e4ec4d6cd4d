"""The shipped Nitro vectors (tests/data/nitro/) and the fixed simulator time, for the attestation tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DATA_DIR = Path(__file__).parent.parent / "data"
NITRO_DIR = DATA_DIR / "nitro"
SIM_TIME = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Vector:
    name: str
    raw: bytes
    expected: dict[str, object]

    @property
    def genuine(self) -> bool:
        return self.expected["result"] == "valid"

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(int(str(self.expected["timestamp_ms"])) / 1000, tz=UTC)

    @property
    def pcrs(self) -> dict[int, bytes]:
        table = self.expected["pcrs"]
        assert isinstance(table, dict)
        return {int(index): bytes.fromhex(value) for index, value in table.items()}


def load_vectors() -> list[Vector]:
    entries = json.loads((NITRO_DIR / "expected.json").read_text())
    return [Vector(entry["file"], (NITRO_DIR / entry["file"]).read_bytes(), entry) for entry in entries]


VECTORS = load_vectors()
GENUINE = [vector for vector in VECTORS if vector.genuine]
BAD = [vector for vector in VECTORS if not vector.genuine]
