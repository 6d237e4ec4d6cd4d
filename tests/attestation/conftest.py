"""Fixtures for the attestation tests: simulated NSMs on a fixed clock."""

from __future__ import annotations

import pytest
from attestation_vectors import SIM_TIME

from enclave_app.nsm.simulated import SimulatedNsm


@pytest.fixture
def fixed_clock_nsm() -> SimulatedNsm:
    """A simulated NSM whose clock is frozen at SIM_TIME."""
    return SimulatedNsm(clock=lambda: SIM_TIME)


@pytest.fixture(scope="module")
def nsm() -> SimulatedNsm:
    return SimulatedNsm(clock=lambda: SIM_TIME)
