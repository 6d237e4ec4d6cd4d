"""Real AWS-signed documents (tests/data/nitro/, provenance in INDEX.md) against the pinned root."""

from __future__ import annotations

import random
from datetime import timedelta

import cbor2
import pytest
from attestation_vectors import BAD, GENUINE, NITRO_DIR, Vector
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pycose.keys import EC2Key
from pycose.messages import Sign1Message
from trustdial_verifier._internal.attestation.envelope import parse_cose_sign1
from trustdial_verifier._internal.attestation.verify import (
    AttestationError,
    PcrsEqual,
    UnsafeNoPolicy,
    read_unverified_timestamp,
    verify_attestation,
)
from trustdial_verifier._internal.cose_sign1 import sig_structure

# Mutated certificates may carry a non-positive serial number: cryptography warns while parsing, then the
# verifier rejects them (CERT_MALFORMED). The warning is expected here, the rejection is what is tested.
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive")
P384_ORDER = int("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973", 16)
FLIPS_PER_DOCUMENT = 200
# Independent expectations (expected.json) name the first failing step of their verifier. Ours checks that
# cabundle[0] equals the trusted root before walking names, so the mock-root documents stop one step earlier.
BAD_CODES = {
    "COSE_SIGNATURE": {"COSE_SIGNATURE"},
    "CHAIN_NAME": {"CHAIN_NAME", "CHAIN_ROOT_MISMATCH"},
    "COSE_SHAPE": {"COSE_SHAPE"},
}


def ids(vector: Vector) -> str:
    return vector.name.removesuffix(".cbor")


def test_shipped_set_is_complete() -> None:
    assert len(GENUINE) == 17
    assert len(BAD) == 4


@pytest.mark.parametrize("vector", GENUINE, ids=ids)
def test_genuine_document_verifies_at_its_own_timestamp_with_expected_pcrs(vector: Vector) -> None:
    document = verify_attestation(vector.raw, PcrsEqual(vector.pcrs), at=vector.at, allow_debug=True)
    assert document.timestamp_ms == vector.expected["timestamp_ms"]
    assert document.module_id == vector.expected["module_id"]
    assert document.debug_mode is vector.expected["debug_mode"]
    assert document.pcrs == vector.pcrs


@pytest.mark.parametrize("vector", [v for v in GENUINE if v.expected["debug_mode"]], ids=ids)
def test_debug_document_rejected_without_allow_debug(vector: Vector) -> None:
    with pytest.raises(AttestationError) as caught:
        verify_attestation(vector.raw, PcrsEqual(vector.pcrs), at=vector.at)
    assert caught.value.code == "DEBUG_MODE"


@pytest.mark.parametrize("vector", [v for v in GENUINE if not v.expected["debug_mode"]], ids=ids)
def test_production_document_verifies_without_allow_debug(vector: Vector) -> None:
    assert verify_attestation(vector.raw, PcrsEqual({0: vector.pcrs[0]}), at=vector.at).debug_mode is False


@pytest.mark.parametrize("shift", [timedelta(days=1), timedelta(days=-1)], ids=["plus_one_day", "minus_one_day"])
@pytest.mark.parametrize("vector", GENUINE, ids=ids)
def test_genuine_document_rejected_one_day_away(vector: Vector, shift: timedelta) -> None:
    with pytest.raises(AttestationError) as caught:
        verify_attestation(vector.raw, PcrsEqual(vector.pcrs), at=vector.at + shift, allow_debug=True)
    assert caught.value.code == "CERT_TIME"


@pytest.mark.parametrize("vector", GENUINE, ids=ids)
def test_genuine_document_rejected_now_by_default(vector: Vector) -> None:
    with pytest.raises(AttestationError) as caught:
        verify_attestation(vector.raw, PcrsEqual(vector.pcrs), allow_debug=True)
    assert caught.value.code == "CERT_TIME"


@pytest.mark.parametrize("vector", BAD, ids=ids)
def test_known_bad_document_rejected(vector: Vector) -> None:
    try:  # audit mode, like --at doc: the document's own claimed time
        at = read_unverified_timestamp(vector.raw)
    except AttestationError:
        at = None
    with pytest.raises(AttestationError) as caught:
        verify_attestation(vector.raw, UnsafeNoPolicy(), at=at, allow_debug=True)
    assert caught.value.code in BAD_CODES[str(vector.expected["result"])]


@pytest.mark.parametrize("vector", GENUINE, ids=ids)
def test_bit_flip_inside_pcr_data_breaks_signature(vector: Vector) -> None:
    flipped = bytearray(vector.raw)
    flipped[160] ^= 0x01
    with pytest.raises(AttestationError) as caught:
        verify_attestation(bytes(flipped), UnsafeNoPolicy(), at=vector.at, allow_debug=True)
    assert caught.value.code == "COSE_SIGNATURE"


@pytest.mark.parametrize("vector", GENUINE, ids=ids)
def test_single_byte_flips_are_all_rejected(vector: Vector) -> None:
    rng = random.Random(vector.name)
    positions = rng.sample(range(len(vector.raw)), FLIPS_PER_DOCUMENT)
    for position in positions:
        mutated = bytearray(vector.raw)
        mutated[position] ^= rng.randrange(1, 256)
        with pytest.raises(AttestationError):
            verify_attestation(bytes(mutated), PcrsEqual(vector.pcrs), at=vector.at, allow_debug=True)


@pytest.mark.parametrize("vector", GENUINE, ids=ids)
def test_tag18_wrapped_copy_accepted(vector: Vector) -> None:
    tagged = b"\xd2" + vector.raw
    assert verify_attestation(tagged, PcrsEqual(vector.pcrs), at=vector.at, allow_debug=True).raw == tagged


@pytest.mark.parametrize("vector", GENUINE, ids=ids)
def test_payload_reencoded_as_indefinite_map_rejected(vector: Vector) -> None:
    protected, unprotected, payload, signature = cbor2.loads(vector.raw)
    fields = cbor2.loads(payload)
    indefinite = b"\xbf" + b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in fields.items()) + b"\xff"
    assert cbor2.loads(indefinite) == fields
    forged = cbor2.dumps([protected, unprotected, indefinite, signature])
    with pytest.raises(AttestationError) as caught:
        verify_attestation(forged, PcrsEqual(vector.pcrs), at=vector.at, allow_debug=True)
    assert caught.value.code == "COSE_SIGNATURE"


@pytest.mark.parametrize("vector", GENUINE, ids=ids)
def test_malleable_twin_signature_accepted(vector: Vector) -> None:
    """(r, n - s) is also a valid ECDSA signature; genuine documents must not be refused over low-S rules."""
    protected, unprotected, payload, signature = cbor2.loads(vector.raw)
    s = int.from_bytes(signature[48:], "big")
    twin = signature[:48] + (P384_ORDER - s).to_bytes(48, "big")
    forged = cbor2.dumps([protected, unprotected, payload, twin])
    verify_attestation(forged, PcrsEqual(vector.pcrs), at=vector.at, allow_debug=True)


def test_sig_structure_matches_libsignal_known_answer() -> None:
    raw = (NITRO_DIR / "signal_svr2_valid_bytes_2023-05-17.cbor").read_bytes()
    expected = (NITRO_DIR / "libsignal_sig_structure_of_test_cose_sign1_01.bin").read_bytes()
    message = parse_cose_sign1(raw)
    assert sig_structure(message.protected, message.payload) == expected


@pytest.mark.parametrize("vector", GENUINE, ids=ids)
def test_pycose_oracle_agrees_genuine_signature_is_valid(vector: Vector) -> None:
    fields = cbor2.loads(cbor2.loads(vector.raw)[2])
    leaf_key = x509.load_der_x509_certificate(fields["certificate"]).public_key()
    message = Sign1Message.from_cose_obj(cbor2.loads(vector.raw), allow_unknown_attributes=True)
    message.key = EC2Key.from_pem_public_key(
        leaf_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    )
    assert message.verify_signature()
