"""``--nsm auto|device|simulated``: auto uses /dev/nsm when it exists, the simulator otherwise."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

NSM_DEVICE = Path("/dev/nsm")
NSM_MODES = ("auto", "device", "simulated")


def _pcr_index(name: str) -> int:
    return int(name.removeprefix("PCR"))


def load_pcrs(path: Path) -> dict[int, bytes]:
    """PCRs for the simulated NSM from an EIF (measured: PCR0/1/2 and PCR8 if signed) or from
    JSON: ``{"0": hex}``, ``{"PCR0": hex}`` (nitro-cli measurements) or a manifest's ``pcrs``."""
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic == b".eif":
        from trustdial_verifier.unstable.eif import measure_eif

        measured = measure_eif(path, file_digests=False).pcrs()
        return {_pcr_index(name): bytes.fromhex(value) for name, value in measured.items() if value is not None}
    raw = json.loads(path.read_text())
    values = raw.get("pcrs", raw) if isinstance(raw, dict) else None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected an EIF or a JSON object of PCR index -> hex value")
    return {
        _pcr_index(index): bytes.fromhex(value)
        for index, value in values.items()
        if isinstance(value, str) and index.removeprefix("PCR").isdigit()
    }


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
