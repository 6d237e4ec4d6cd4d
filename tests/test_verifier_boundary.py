"""The packages that build on the verifier (enclave_app, prover, infra, trustdial, bench) import only its public
names, its errors and its documented unstable layer, never ``trustdial_verifier._internal``: everything under
``_internal`` may change without notice, so code outside the verifier that reaches in breaks silently."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONSUMERS = ("enclave_app", "prover", "infra", "trustdial", "bench")


def private_imports(source: str, filename: str) -> list[str]:
    """Every module under ``trustdial_verifier`` an import statement in ``source`` names with a private component
    (``_internal`` or any other name starting with an underscore)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            modules = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "trustdial_verifier" and any(part.startswith("_") for part in parts[1:]):
                found.append(f"{filename}:{node.lineno}: {module}")
    return found


def consumer_files() -> list[Path]:
    return sorted(path for package in CONSUMERS for path in (ROOT / package).rglob("*.py"))


def test_the_scan_sees_every_consumer_package() -> None:
    files = consumer_files()
    for package in CONSUMERS:
        assert any(path.relative_to(ROOT).parts[0] == package for path in files), package


@pytest.mark.parametrize(
    "source",
    [
        "from trustdial_verifier._internal.tensors import Tensor\n",
        "import trustdial_verifier._internal.receipts.seal\n",
        "from trustdial_verifier import _internal\n",
        "def f():\n    from trustdial_verifier._internal import strict_json\n",
    ],
)
def test_the_scan_finds_a_private_import(source: str) -> None:
    assert private_imports(source, "example.py")


@pytest.mark.parametrize(
    "source",
    [
        "from trustdial_verifier.unstable.tensors import Tensor\n",
        "from trustdial_verifier.errors import VerificationError\n",
        "import trustdial_verifier\n",
        "from trustdial_verifier import VerificationError\n",
        "from .trustdial_verifier._internal import x\n",
    ],
)
def test_the_scan_allows_the_public_and_unstable_layers(source: str) -> None:
    assert not private_imports(source, "example.py")


def test_no_consumer_imports_the_verifiers_internals() -> None:
    offending = [
        hit for path in consumer_files() for hit in private_imports(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert not offending, "import these from trustdial_verifier.unstable instead:\n" + "\n".join(offending)
