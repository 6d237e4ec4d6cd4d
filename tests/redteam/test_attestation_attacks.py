"""Attacks on verify_attestation with documents signed by a (simulated) NSM leaf: parser differentials
inside the signed payload, envelope confusion, and splicing signed parts between genuine documents."""

from __future__ import annotations

import cbor2
import pytest
from redteam_support import SIM_TIME, fixed_nsm
from trustdial_verifier._internal.attestation.verify import (
    AttestationError,
    NonceEquals,
    PcrsEqual,
    UnsafeNoPolicy,
    verify_attestation,
)

from enclave_app.nsm.simulated import SimulatedNsm


@pytest.fixture(scope="module")
def nsm() -> SimulatedNsm:
    return fixed_nsm()


def _pcr_policy(nsm: SimulatedNsm) -> PcrsEqual:
    return PcrsEqual({index: nsm.describe_pcr(index)[1] for index in (0, 1, 2)})


def _code(nsm: SimulatedNsm, raw: bytes, policy: object = None) -> str:
    with pytest.raises(AttestationError) as caught:
        verify_attestation(raw, policy or _pcr_policy(nsm), root=nsm.root_certificate, at=SIM_TIME)  # type: ignore[arg-type]
    return caught.value.code


def _payload_with_pcrs(nsm: SimulatedNsm, pcrs_item: bytes) -> bytes:
    """The simulator's payload with the ``pcrs`` value replaced by hand-written CBOR bytes."""
    fields = nsm.payload_fields()
    marker = b"\x00PCRS-MARKER\x00"
    fields["pcrs"] = marker
    encoded = cbor2.dumps(fields)
    return encoded.replace(cbor2.dumps(marker), pcrs_item)


def _pcr_map(entries: list[tuple[bytes, bytes]]) -> bytes:
    return bytes([0xA0 + len(entries)]) + b"".join(key + value for key, value in entries)


def test_pcr0_given_twice_through_a_non_canonical_index_is_rejected(nsm: SimulatedNsm) -> None:
    genuine, forged = cbor2.dumps(nsm.describe_pcr(0)[1]), cbor2.dumps(b"\x11" * 48)
    pcrs = _pcr_map([(b"\x00", genuine), (b"\x18\x00", forged)])  # 0 and 0 (one-byte argument form)
    assert _code(nsm, nsm.sign(_payload_with_pcrs(nsm, pcrs))) == "CBOR_DUPLICATE_KEY"


def test_pcr_index_as_a_bignum_tag_is_rejected(nsm: SimulatedNsm) -> None:
    value = cbor2.dumps(nsm.describe_pcr(0)[1])
    pcrs = _pcr_map([(b"\xc2\x41\x00", value)])  # tag 2 (bignum) h'00' = 0
    assert _code(nsm, nsm.sign(_payload_with_pcrs(nsm, pcrs))) == "CBOR_UNSUPPORTED"


def test_pcr_index_minus_one_is_rejected(nsm: SimulatedNsm) -> None:
    pcrs = _pcr_map([(b"\x00", cbor2.dumps(nsm.describe_pcr(0)[1])), (b"\x20", cbor2.dumps(b"\x11" * 48))])
    assert _code(nsm, nsm.sign(_payload_with_pcrs(nsm, pcrs))) == "PAYLOAD_FIELD"


def test_pcr_value_wrapped_in_a_tag_is_rejected(nsm: SimulatedNsm) -> None:
    pcrs = _pcr_map([(b"\x00", b"\xd8\x18" + cbor2.dumps(nsm.describe_pcr(0)[1]))])  # tag 24 around the bytes
    # the strict reader allows no tag inside the payload, so the tag itself is refused before the field check
    assert _code(nsm, nsm.sign(_payload_with_pcrs(nsm, pcrs))) == "CBOR_UNSUPPORTED"


def test_field_name_as_a_byte_string_is_an_unknown_field(nsm: SimulatedNsm) -> None:
    fields: dict[object, object] = dict(nsm.payload_fields())
    fields[b"nonce"] = b"attacker nonce"
    assert _code(nsm, nsm.sign(cbor2.dumps(fields))) == "PAYLOAD_UNKNOWN_FIELD"


def test_document_without_pcr0_cannot_dodge_the_debug_check(nsm: SimulatedNsm) -> None:
    fields = nsm.payload_fields(nonce=b"n")
    fields["pcrs"] = {index: value for index, value in fields["pcrs"].items() if index != 0}
    assert _code(nsm, nsm.sign(cbor2.dumps(fields)), NonceEquals(b"n")) == "PAYLOAD_FIELD"


def test_chunked_public_key_is_rejected(nsm: SimulatedNsm) -> None:
    fields = nsm.payload_fields()
    marker = b"\x00KEY-MARKER\x00"
    fields["public_key"] = marker
    chunked = b"\x5f\x42\x01\x02\x42\x03\x04\xff"
    assert _code(nsm, nsm.sign(cbor2.dumps(fields).replace(cbor2.dumps(marker), chunked))) == "CBOR_UNSUPPORTED"


def test_cose_wrapped_in_tag_18_twice_is_rejected(nsm: SimulatedNsm) -> None:
    parts = cbor2.loads(nsm.attest())
    raw = cbor2.dumps(cbor2.CBORTag(18, cbor2.CBORTag(18, parts)))
    assert _code(nsm, raw) == "COSE_SHAPE"


def test_cose_inside_embedded_cbor_tag_24_is_rejected(nsm: SimulatedNsm) -> None:
    raw = cbor2.dumps(cbor2.CBORTag(24, nsm.attest()))
    assert _code(nsm, raw) == "COSE_SHAPE"


def test_payload_of_one_genuine_document_under_the_signature_of_another_is_rejected(nsm: SimulatedNsm) -> None:
    first = cbor2.loads(nsm.attest(nonce=b"first"))
    second = cbor2.loads(nsm.attest(nonce=b"second"))
    spliced = cbor2.dumps([first[0], first[1], second[2], first[3]])
    assert _code(nsm, spliced, NonceEquals(b"second")) == "COSE_SIGNATURE"


def test_protected_header_reencoded_non_canonically_is_rejected(nsm: SimulatedNsm) -> None:
    parts = cbor2.loads(nsm.attest())
    assert parts[0] == bytes.fromhex("a1013822")
    parts[0] = bytes.fromhex("a101390022")  # {1: -35} with a two-byte argument: same map, other bytes
    assert _code(nsm, cbor2.dumps(parts), UnsafeNoPolicy()) == "COSE_SIGNATURE"


def test_document_handed_over_as_hex_text_is_not_decoded_by_the_library(nsm: SimulatedNsm) -> None:
    assert _code(nsm, nsm.attest().hex().encode()) in {"COSE_SHAPE", "CBOR_TRAILING_BYTES", "CBOR_MALFORMED"}
