"""The only place the verifier touches ezkl (an optional extra without type stubs).

ezkl is imported lazily so that ``trustdial-verify`` works for every other kind of evidence
without it; a missing extra is a usage error naming the extra, never a silent pass.
Every untyped call is wrapped here with a typed signature.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from trustdial_verifier.errors import InputError, VerificationError

EXTRA_HINT = "install the optional extra: pip install 'trustdial-verifier[zk]'"


def load_ezkl() -> ModuleType:
    """Import ezkl or raise ``InputError(ZK_EXTRA_MISSING)``."""
    try:
        return importlib.import_module("ezkl")
    except ImportError as err:
        raise InputError(
            "ZK_EXTRA_MISSING", f"ezkl is needed to check proofs but is not importable ({err}); {EXTRA_HINT}"
        ) from err


def installed_ezkl_version() -> str:
    load_ezkl()
    return importlib.metadata.version("ezkl")


def verify_proof_file(proof: Path, settings: Path, vk: Path, srs: Path) -> None:
    """Run ezkl's KZG verifier; any failure is a rejection (ezkl raises, it never returns False)."""
    ezkl: Any = load_ezkl()
    try:
        ok = ezkl.verify(str(proof), str(settings), str(vk), srs_path=str(srs))
    except RuntimeError as err:
        raise VerificationError(
            "PROOF_INVALID", f"expected a proof that verifies against the pinned vk; ezkl: {err}"
        ) from err
    if ok is not True:
        raise VerificationError("PROOF_INVALID", f"expected ezkl.verify to return True, got {ok!r}")


class QuantizationError(VerificationError):
    """A value ezkl cannot quantize at the scale (its ``round(value * 2**scale)`` is out of range):
    it is the felt of no proof instance."""


def float_to_felt(value: float, scale: int, *, as_f32: bool) -> str:
    """Quantize ``round(value * 2**scale)`` into a BN254 field element (64 hex chars, little-endian)."""
    ezkl: Any = load_ezkl()
    input_type = ezkl.PyInputType.F32 if as_f32 else ezkl.PyInputType.F64
    try:
        felt: str = ezkl.float_to_felt(float(value), scale, input_type)
    except (OSError, RuntimeError, OverflowError, ValueError) as err:  # ezkl: OSError "Failed to quantize input"
        raise QuantizationError(
            "TENSOR_NOT_QUANTIZABLE", f"expected a value ezkl can quantize at scale {scale}, found {value!r}: {err}"
        ) from err
    return felt


def felt_to_float(felt: str, scale: int) -> float:
    ezkl: Any = load_ezkl()
    value: float = ezkl.felt_to_float(felt, scale)
    return value


def poseidon_hash(felts: list[str]) -> str:
    """ezkl's Poseidon (the in-circuit hash of "hashed" visibility) over a list of felts."""
    ezkl: Any = load_ezkl()
    digest: list[str] = ezkl.poseidon_hash(felts)
    if len(digest) != 1:
        raise RuntimeError(f"ezkl.poseidon_hash returned {len(digest)} elements, expected 1")
    return digest[0]
