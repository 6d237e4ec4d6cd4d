"""Coverage-guided fuzzing of verify_attestation with atheris (run by ``make fuzz``; not a pytest module).

Every input is verified twice: under a simulator root at the simulator's time (reaches the policy and
signature checks for mutated simulator documents) and under the pinned AWS root at the document's claimed
time (reaches the same depth for mutated genuine documents). The only acceptable outcomes are success
or an AttestationError; anything else is a finding and stops the run with a reproducer file.

Usage: python tests/fuzz/fuzz_attestation.py [-runs=N] [libFuzzer options]   (default -runs=100000)
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import atheris
from fuzz_runner import fuzz

with atheris.instrument_imports():
    from trustdial_verifier._internal.attestation.verify import (
        AttestationError,
        UnsafeNoPolicy,
        read_unverified_timestamp,
        verify_attestation,
    )

from enclave_app.nsm.simulated import SimulatedNsm

SIM_TIME = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
FALLBACK_TIME = datetime(2024, 9, 7, 14, 40, tzinfo=UTC)
NITRO_DIR = Path(__file__).resolve().parent.parent / "data" / "nitro"
NSM = SimulatedNsm(clock=lambda: SIM_TIME)
POLICY = UnsafeNoPolicy()


def test_one_input(data: bytes) -> None:
    try:
        verify_attestation(data, POLICY, root=NSM.root_certificate, at=SIM_TIME, allow_debug=True)
    except AttestationError:
        pass
    try:
        at = read_unverified_timestamp(data)
    except AttestationError:
        at = FALLBACK_TIME
    try:
        verify_attestation(data, POLICY, at=at, allow_debug=True)
    except AttestationError:
        pass


def seed_corpus(directory: Path) -> None:
    for path in sorted(NITRO_DIR.glob("*.cbor")):
        (directory / path.name).write_bytes(path.read_bytes())
    (directory / "sim_plain").write_bytes(NSM.attest())
    (directory / "sim_full").write_bytes(NSM.attest(nonce=b"n" * 32, user_data=b"u" * 64, public_key=b"k" * 97))
    tagged = SimulatedNsm(tag18=True, indefinite_payload=True, clock=lambda: SIM_TIME)
    (directory / "sim_tagged_indefinite").write_bytes(tagged.attest(nonce=b"x"))


def main() -> None:
    fuzz(test_one_input, seed_corpus, what="verify_attestation", max_len=16384, prefix="trustdial-fuzz-")


if __name__ == "__main__":
    main()
