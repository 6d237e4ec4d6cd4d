"""``python -O`` strips ``assert`` statements: no check of the verifier may live in one, and the
verifier must reject the same documents when run optimized."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from redteam_support import genuine

VERIFIER_SRC = Path(__file__).resolve().parents[2] / "verifier" / "src" / "trustdial_verifier"
VERIFY = Path(sys.executable).parent / "trustdial-verify"
MARLIN = genuine("marlin_oyster_aws_2024-12-13.cbor")


def _asserts_in_functions(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    lines: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines += [inner.lineno for inner in ast.walk(node) if isinstance(inner, ast.Assert)]
    return lines


def test_no_verifier_function_relies_on_assert() -> None:
    sources = sorted(VERIFIER_SRC.rglob("*.py"))
    assert len(sources) > 20, f"the verifier's sources were not found under {VERIFIER_SRC}"
    found = {
        str(path.relative_to(VERIFIER_SRC)): lines
        for path in sources
        if (lines := _asserts_in_functions(path))
    }
    assert found == {}


def _verify_optimized(tmp_path: Path, raw: bytes, pcr0: str) -> int:
    doc = tmp_path / "doc.cbor"
    doc.write_bytes(raw)
    done = subprocess.run(
        [sys.executable, "-O", str(VERIFY), "attestation", str(doc), "--at", "doc", "--pcr", f"0={pcr0}", "--json"],
        capture_output=True,
        timeout=120,
    )
    return done.returncode


def test_genuine_document_verifies_under_python_O(tmp_path: Path) -> None:
    assert _verify_optimized(tmp_path, MARLIN.raw, MARLIN.pcrs[0].hex()) == 0


@pytest.mark.parametrize("offset", [-1, -60, len(MARLIN.raw) // 2])
def test_flipped_byte_is_rejected_under_python_O(tmp_path: Path, offset: int) -> None:
    raw = bytearray(MARLIN.raw)
    raw[offset] ^= 0x01
    assert _verify_optimized(tmp_path, bytes(raw), MARLIN.pcrs[0].hex()) == 1


def test_wrong_pcr_is_rejected_under_python_O(tmp_path: Path) -> None:
    wrong = bytes(48).hex() if MARLIN.pcrs[0] != bytes(48) else "11" * 48
    assert _verify_optimized(tmp_path, MARLIN.raw, wrong) == 1
