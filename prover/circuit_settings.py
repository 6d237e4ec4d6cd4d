"""ezkl circuit settings: the knobs trustdial exposes and how they become settings.json."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ezkl

from prover.console import ezkl_prints_to_stderr
from prover.errors import ProverError

VISIBILITIES = ("public", "hashed")


@dataclass(frozen=True)
class CircuitOptions:
    """What ``trustdial zk compile`` lets the operator choose (None = ezkl's default)."""

    input_visibility: str = "public"
    output_visibility: str = "public"
    decomp_base: int | None = None
    decomp_legs: int | None = None
    scales: tuple[int, ...] | None = None
    lookup_safety_margin: float | None = None

    def __post_init__(self) -> None:
        for side in (self.input_visibility, self.output_visibility):
            if side not in VISIBILITIES:
                raise ProverError("BAD_VISIBILITY", f"expected visibility in {VISIBILITIES}, got {side!r}")

    def with_decomposition(self, base: int, legs: int) -> CircuitOptions:
        return replace(self, decomp_base=base, decomp_legs=legs)


def write_settings(model: Path, calibration: Path, settings: Path, options: CircuitOptions) -> dict[str, Any]:
    """gen_settings + calibrate_settings (target "resources"); returns the resulting settings."""
    run_args = ezkl.PyRunArgs()
    run_args.input_visibility = options.input_visibility
    run_args.output_visibility = options.output_visibility
    run_args.param_visibility = "fixed"
    if options.decomp_base is not None:
        run_args.decomp_base = options.decomp_base
    if options.decomp_legs is not None:
        run_args.decomp_legs = options.decomp_legs
    try:
        ezkl.gen_settings(str(model), str(settings), py_run_args=run_args)
        kwargs: dict[str, Any] = {}
        if options.scales is not None:
            kwargs["scales"] = list(options.scales)
        if options.lookup_safety_margin is not None:
            kwargs["lookup_safety_margin"] = options.lookup_safety_margin
        # calibrate prints a large fidelity table on stdout; keep stdout for results only.
        with ezkl_prints_to_stderr():
            ezkl.calibrate_settings(str(calibration), str(model), str(settings), "resources", **kwargs)
    except RuntimeError as err:
        raise ProverError("SETTINGS_FAILED", f"ezkl could not build settings for {model}: {err}") from err
    loaded: dict[str, Any] = json.loads(settings.read_text(encoding="utf-8"))
    return loaded
