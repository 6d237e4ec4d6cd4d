"""The prover's typed calls into ezkl.

ezkl 23's bundled stubs do not match its runtime: they mark defaulted arguments as required
(``setup``'s ``witness_path``, ``gen_witness``'s ``vk_path``, ``verify``'s ``reduced_srs``, ...)
and leave out ``PyRunArgs``' visibility and decomposition attributes. Every call the prover and
the pipeline tools make goes through a function here, with the signature trustdial relies on;
ezkl itself is handled as untyped below. Verifying a proof and converting field elements are
the verifier's (``trustdial_verifier._internal.proof.ezkl_calls``), used from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ezkl as _ezkl_module

_ezkl: Any = _ezkl_module


def run_args(
    input_visibility: str, output_visibility: str, *, decomp_base: int | None = None, decomp_legs: int | None = None
) -> Any:
    """``PyRunArgs`` with fixed (baked-in) parameters and the given visibilities."""
    args = _ezkl.PyRunArgs()
    args.input_visibility = input_visibility
    args.output_visibility = output_visibility
    args.param_visibility = "fixed"
    if decomp_base is not None:
        args.decomp_base = decomp_base
    if decomp_legs is not None:
        args.decomp_legs = decomp_legs
    return args


def gen_settings(model: Path, settings: Path, args: Any) -> None:
    _ezkl.gen_settings(str(model), str(settings), py_run_args=args)


def calibrate_settings(
    data: Path,
    model: Path,
    settings: Path,
    *,
    scales: list[int] | None = None,
    lookup_safety_margin: float | None = None,
) -> None:
    """Calibrate for target ``resources`` (ezkl's defaults where an option is None)."""
    options: dict[str, Any] = {}
    if scales is not None:
        options["scales"] = scales
    if lookup_safety_margin is not None:
        options["lookup_safety_margin"] = lookup_safety_margin
    _ezkl.calibrate_settings(str(data), str(model), str(settings), "resources", **options)


def compile_circuit(model: Path, compiled: Path, settings: Path) -> None:
    _ezkl.compile_circuit(str(model), str(compiled), str(settings))


def gen_srs(path: Path, logrows: int) -> None:
    """A development SRS generated locally (not from a ceremony)."""
    _ezkl.gen_srs(str(path), logrows)


def setup(compiled: Path, vk: Path, pk: Path, srs: Path) -> None:
    _ezkl.setup(str(compiled), str(vk), str(pk), srs_path=str(srs))


def gen_witness(data: Path, compiled: Path, witness: Path) -> dict[str, Any]:
    result: dict[str, Any] = _ezkl.gen_witness(str(data), str(compiled), str(witness))
    return result


def mock(witness: Path, compiled: Path) -> bool:
    return bool(_ezkl.mock(str(witness), str(compiled)))


def prove(witness: Path, compiled: Path, pk: Path, proof: Path, srs: Path) -> None:
    _ezkl.prove(str(witness), str(compiled), str(pk), str(proof), srs_path=str(srs))


__all__ = [
    "calibrate_settings",
    "compile_circuit",
    "gen_settings",
    "gen_srs",
    "gen_witness",
    "mock",
    "prove",
    "run_args",
    "setup",
]
