"""``--nsm auto|device|simulated``: auto uses /dev/nsm when it exists, the simulator otherwise."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

NSM_DEVICE = Path("/dev/nsm")
NSM_MODES = ("auto", "device", "simulated")


def load_pcrs(path: Path) -> dict[int, bytes]:
    """PCRs from a JSON object ``{"0": "hex", ...}`` (a measurement list, e.g. from ``make eif``)."""
    raw = json.loads(path.read_text())
    values = raw.get("pcrs", raw) if isinstance(raw, dict) else None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a JSON object of PCR index -> hex value")
    return {int(index): bytes.fromhex(value) for index, value in values.items()}


def open_nsm(mode: str, *, device: Path = NSM_DEVICE, simulated_pcrs: Mapping[int, bytes] | None = None) -> Any:
    """An object satisfying ``enclave_app.nsm.interface.Nsm``."""
    if mode not in NSM_MODES:
        raise ValueError(f"expected --nsm in {NSM_MODES}, found {mode!r}")
    if mode == "device" or (mode == "auto" and device.exists()):
        from enclave_app.nsm.device import DeviceNsm

        return DeviceNsm.open(device)  # raises NsmError if it cannot be opened: never falls back silently
    from enclave_app.nsm.simulated import SimulatedNsm

    if mode == "auto":
        print(f"trustdial: {device} not present, using the simulated NSM (development only)", file=sys.stderr)
    return SimulatedNsm(pcrs=simulated_pcrs)
