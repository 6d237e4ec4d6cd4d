"""Shared pieces for the red-team attacks: a simulated NSM on a fixed clock, the shipped genuine vectors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from enclave_app.nsm.simulated import SimulatedNsm

NITRO_DIR = Path(__file__).parent.parent / "data" / "nitro"
SIM_TIME = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
MARLIN_FILE = NITRO_DIR / "marlin_oyster_aws_2024-12-13.cbor"


@dataclass(frozen=True)
class GenuineVector:
    path: Path
    timestamp_ms: int
    pcrs: dict[int, bytes]

    @property
    def raw(self) -> bytes:
        return self.path.read_bytes()

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)


def genuine(name: str) -> GenuineVector:
    """A genuine AWS document from tests/data/nitro with its independently published PCRs (expected.json)."""
    entries = json.loads((NITRO_DIR / "expected.json").read_text())
    entry = next(e for e in entries if e["file"] == name)
    pcrs = {int(index): bytes.fromhex(value) for index, value in entry["pcrs"].items()}
    return GenuineVector(NITRO_DIR / name, int(entry["timestamp_ms"]), pcrs)


def fixed_nsm(**options: object) -> SimulatedNsm:
    return SimulatedNsm(clock=lambda: SIM_TIME, **options)  # type: ignore[arg-type]
