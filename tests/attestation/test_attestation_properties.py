"""Properties: whatever bytes arrive, verification either succeeds or raises AttestationError, quickly."""

from __future__ import annotations

import time

import cbor2
import pytest
from attestation_vectors import GENUINE, SIM_TIME
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trustdial_verifier._internal.attestation.verify import (
    AttestationError,
    PcrsEqual,
    UnsafeNoPolicy,
    verify_attestation,
)

from enclave_app.nsm.simulated import SimulatedNsm

# Mutated certificates may carry a non-positive serial number: cryptography warns while parsing, then the
# verifier rejects them (CERT_MALFORMED). The warning is expected here, the rejection is what is tested.
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive")
MAX_SECONDS_PER_INPUT = 1.0
NSM = SimulatedNsm(clock=lambda: SIM_TIME)
SIM_DOC = NSM.attest(nonce=b"\x07" * 32)
SEED_DOCS = [SIM_DOC, GENUINE[0].raw, GENUINE[7].raw]


def verify_bounded(raw: bytes) -> None:
    started = time.perf_counter()
    try:
        verify_attestation(raw, UnsafeNoPolicy(), root=NSM.root_certificate, at=SIM_TIME, allow_debug=True)
    except AttestationError:
        pass
    assert time.perf_counter() - started < MAX_SECONDS_PER_INPUT


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_attestation_error(raw: bytes) -> None:
    verify_bounded(raw)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_behind_a_valid_cose_prefix_raise_only_attestation_error(tail: bytes) -> None:
    verify_bounded(b"\x84\x44\xa1\x01\x38\x22\xa0" + tail)


@st.composite
def mutated_documents(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(SEED_DOCS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
        position = draw(st.integers(0, len(raw) - 1))
        if kind == "replace":
            raw[position] = draw(st.integers(0, 255))
        elif kind == "insert":
            raw[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del raw[position : position + draw(st.integers(1, 8))]
        else:
            del raw[position:]
        if not raw:
            break
    return bytes(raw)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_documents())
def test_mutated_documents_raise_only_attestation_error(raw: bytes) -> None:
    verify_bounded(raw)


@st.composite
def mutated_payload_values(draw: st.DrawFn) -> bytes:
    """Well-formed, correctly signed documents whose payload fields hold arbitrary CBOR values."""
    fields = NSM.payload_fields()
    name = draw(st.sampled_from(list(fields)))
    fields[name] = draw(
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.binary(max_size=40) | st.text(max_size=8),
            lambda children: st.lists(children, max_size=4) | st.dictionaries(st.integers(0, 40), children, max_size=4),
            max_leaves=8,
        )
    )
    return NSM.sign(cbor2.dumps(fields))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_payload_values())
def test_signed_documents_with_arbitrary_field_values_raise_only_attestation_error(raw: bytes) -> None:
    verify_bounded(raw)


def test_unmutated_seed_document_is_accepted() -> None:
    """Guards the properties above: the seeds themselves verify, so rejections come from the mutations."""
    assert verify_attestation(SIM_DOC, PcrsEqual({0: NSM.describe_pcr(0)[1]}), root=NSM.root_certificate, at=SIM_TIME)
