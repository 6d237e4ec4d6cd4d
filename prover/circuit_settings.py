"""ezkl circuit settings: the knobs trustdial exposes and how they become settings.json."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from prover import ezkl_api
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
    run_args = ezkl_api.run_args(
        options.input_visibility,
        options.output_visibility,
        decomp_base=options.decomp_base,
        decomp_legs=options.decomp_legs,
    )
    try:
        ezkl_api.gen_settings(model, settings, run_args)
        # calibrate prints a large fidelity table on stdout; keep stdout for results only.
        with ezkl_prints_to_stderr():
            ezkl_api.calibrate_settings(
                calibration,
                model,
                settings,
                scales=None if options.scales is None else list(options.scales),
                lookup_safety_margin=options.lookup_safety_margin,
            )
    except RuntimeError as err:
        raise ProverError("SETTINGS_FAILED", f"ezkl could not build settings for {model}: {err}") from err
    loaded: dict[str, Any] = json.loads(settings.read_text(encoding="utf-8"))
    return loaded
