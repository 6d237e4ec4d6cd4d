"""Enclave measurements (PCR0/1/2) used as synth inputs for the model-weights key policy."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from infra.cdk.errors import InfraConfigError

PCR_HEX_PATTERN = re.compile(r"[0-9a-f]{96}")
DEBUG_MODE_PCR = "0" * 96


def validate_pcr(name: str, value: object) -> str:
    """Return ``value`` if it is a usable SHA-384 PCR: 96 lowercase hex characters, not the debug-mode zeros."""
    if not isinstance(value, str) or PCR_HEX_PATTERN.fullmatch(value) is None:
        raise InfraConfigError(
            "BAD_PCR", f"{name}: expected 96 lowercase hexadecimal characters (SHA-384), found {value!r}"
        )
    if value == DEBUG_MODE_PCR:
        raise InfraConfigError(
            "DEBUG_PCR",
            f"{name}: all zeros is what a debug-mode enclave reports; a key released to it is released to anyone",
        )
    return value


@dataclass(frozen=True)
class EnclavePcrs:
    """One accepted enclave image: its PCR0 (image), PCR1 (kernel + bootstrap) and PCR2 (application)."""

    pcr0: str
    pcr1: str
    pcr2: str

    def __post_init__(self) -> None:
        for name in ("pcr0", "pcr1", "pcr2"):
            validate_pcr(name, getattr(self, name))

    def by_index(self) -> dict[int, str]:
        return {0: self.pcr0, 1: self.pcr1, 2: self.pcr2}


def _placeholder(index: int) -> str:
    return hashlib.sha384(f"trustdial DEVELOPMENT placeholder PCR{index}: matches no enclave".encode()).hexdigest()


# DEVELOPMENT DEFAULT. These values are hashes of a fixed label: no real enclave image measures to them, so a key
# policy built from them releases the model-weights key to nobody (fail closed). Replace them with the PCRs from
# your signed measurement manifest (context `pcrs` or the config file) before uploading any weights.
DEVELOPMENT_PCRS = EnclavePcrs(pcr0=_placeholder(0), pcr1=_placeholder(1), pcr2=_placeholder(2))
