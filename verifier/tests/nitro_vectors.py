"""The shipped Nitro vectors (data/nitro, provenance in data/PROVENANCE.md) for the verifier's own tests, which
import only ``trustdial_verifier``, cbor2, cryptography and pytest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cbor2

DATA = Path(__file__).resolve().parent / "data"
NITRO = DATA / "nitro"

#: expected.json names the first failing check of an independent verifier; where the chain walk differs, this
#: verifier may report the same failure under another code for the same cause.
EQUIVALENT_CODES = {"CHAIN_NAME": {"CHAIN_NAME", "CHAIN_ROOT_MISMATCH"}}


@dataclass(frozen=True)
class NitroVector:
    file: str
    expected: dict[str, object]

    @property
    def raw(self) -> bytes:
        return (NITRO / self.file).read_bytes()

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

    @property
    def claimed_time(self) -> datetime:
        """The time the document claims, read here with plain cbor2 (a bad document may not decode: then a fixed
        time inside the period the vectors were collected)."""
        try:
            payload = cbor2.loads(cbor2.loads(self.raw)[2])
            return datetime.fromtimestamp(payload["timestamp"] / 1000, tz=UTC)
        except (cbor2.CBORDecodeError, TypeError, KeyError, IndexError, ValueError):
            return datetime(2024, 9, 9, tzinfo=UTC)

    def accepts_code(self, code: str) -> bool:
        want = str(self.expected["result"])
        return code in EQUIVALENT_CODES.get(want, {want})


def nitro_vectors() -> list[NitroVector]:
    return [NitroVector(entry["file"], entry) for entry in json.loads((NITRO / "expected.json").read_text())]
