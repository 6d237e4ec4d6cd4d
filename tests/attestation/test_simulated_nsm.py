"""The simulated NSM emits documents shaped like the real NSM's, verifiable only under its own root."""

from __future__ import annotations

import hashlib
import itertools
from datetime import timedelta

import cbor2
import pytest
from attestation_vectors import NITRO_DIR, SIM_TIME
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pycose.keys import EC2Key
from pycose.messages import Sign1Message
from trustdial_verifier._internal.attestation.verify import AttestationError, NonceEquals, PcrsEqual, verify_attestation

from enclave_app.nsm.interface import Nsm
from enclave_app.nsm.simulated import SimulatedNsm

NSM_KEY_ORDER = [
    "module_id",
    "digest",
    "timestamp",
    "pcrs",
    "certificate",
    "cabundle",
    "public_key",
    "user_data",
    "nonce",
]


def test_simulator_satisfies_the_nsm_protocol(nsm: SimulatedNsm) -> None:
    instance: Nsm = nsm
    assert instance.module_id.startswith("i-")


def test_document_payload_has_the_nine_nsm_keys_in_order_with_null_optionals(nsm: SimulatedNsm) -> None:
    payload = cbor2.loads(cbor2.loads(nsm.attest())[2])
    assert list(payload) == NSM_KEY_ORDER
    assert payload["public_key"] is None and payload["user_data"] is None and payload["nonce"] is None


def test_document_envelope_starts_like_real_nsm_output(nsm: SimulatedNsm) -> None:
    genuine = (NITRO_DIR / "marlin_oyster_aws_2024-12-13.cbor").read_bytes()
    assert nsm.attest()[:7] == genuine[:7]  # 84 44 a1 01 38 22 a0: array(4), bstr{1:-35}, {}


def test_default_pcrs_are_sixteen_of_48_bytes(nsm: SimulatedNsm) -> None:
    pcrs = cbor2.loads(cbor2.loads(nsm.attest())[2])["pcrs"]
    assert sorted(pcrs) == list(range(16))
    assert {len(value) for value in pcrs.values()} == {48}


def test_timestamp_comes_from_the_clock(nsm: SimulatedNsm) -> None:
    payload = cbor2.loads(cbor2.loads(nsm.attest())[2])
    assert payload["timestamp"] == int(SIM_TIME.timestamp() * 1000)


def test_chain_has_aws_shape(nsm: SimulatedNsm) -> None:
    payload = cbor2.loads(cbor2.loads(nsm.attest())[2])
    chain = [x509.load_der_x509_certificate(der) for der in [*payload["cabundle"], payload["certificate"]]]
    assert len(chain) == 5
    path_lengths = [c.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length for c in chain[:4]]
    assert path_lengths == [None, 2, 1, 0]
    leaf_constraints = chain[4].extensions.get_extension_for_class(x509.BasicConstraints)
    assert leaf_constraints.critical and not leaf_constraints.value.ca
    for certificate in chain:
        key = certificate.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"
        assert certificate.signature_algorithm_oid.dotted_string == "1.2.840.10045.4.3.3"  # ecdsa-with-SHA384
    for issuer, subject in itertools.pairwise(chain):
        subject.verify_directly_issued_by(issuer)
    assert chain[4].not_valid_after_utc - chain[4].not_valid_before_utc == timedelta(hours=3, seconds=3)


def test_document_verifies_only_under_the_simulator_root(nsm: SimulatedNsm) -> None:
    raw = nsm.attest(nonce=b"n" * 32)
    policy = NonceEquals(b"n" * 32)
    assert verify_attestation(raw, policy, root=nsm.root_certificate, at=SIM_TIME).nonce == b"n" * 32
    with pytest.raises(AttestationError) as caught:
        verify_attestation(raw, policy, at=SIM_TIME)
    assert caught.value.code == "CHAIN_ROOT_MISMATCH"


def test_indefinite_length_payload_document_accepted() -> None:
    nsm = SimulatedNsm(indefinite_payload=True, clock=lambda: SIM_TIME)
    raw = nsm.attest(user_data=b"u")
    assert cbor2.loads(raw)[2][:1] == b"\xbf"
    assert verify_attestation(raw, PcrsEqual({0: nsm.describe_pcr(0)[1]}), root=nsm.root_certificate, at=SIM_TIME)


def test_tag18_document_accepted() -> None:
    nsm = SimulatedNsm(tag18=True, clock=lambda: SIM_TIME)
    raw = nsm.attest()
    assert raw[:1] == b"\xd2"
    assert verify_attestation(raw, PcrsEqual({0: nsm.describe_pcr(0)[1]}), root=nsm.root_certificate, at=SIM_TIME)


@pytest.mark.parametrize("indefinite", [False, True], ids=["definite", "indefinite"])
def test_pycose_oracle_verifies_simulator_documents(indefinite: bool) -> None:
    nsm = SimulatedNsm(indefinite_payload=indefinite, clock=lambda: SIM_TIME)
    raw = nsm.attest(nonce=b"\x01" * 1024, public_key=b"\x02" * 1024, user_data=b"\x03" * 1024)
    message = Sign1Message.from_cose_obj(cbor2.loads(raw), allow_unknown_attributes=True)
    leaf = nsm.pki.leaf.certificate.public_key()
    message.key = EC2Key.from_pem_public_key(
        leaf.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    )
    assert message.verify_signature()


def test_configured_pcrs_appear_in_document() -> None:
    pcr0 = hashlib.sha384(b"my image").digest()
    nsm = SimulatedNsm({0: pcr0, 16: bytes(48)}, clock=lambda: SIM_TIME)
    document = verify_attestation(nsm.attest(), PcrsEqual({0: pcr0}), root=nsm.root_certificate, at=SIM_TIME)
    assert document.pcrs[0] == pcr0 and 16 in document.pcrs


def test_debug_mode_zeroes_pcr0_to_2() -> None:
    nsm = SimulatedNsm(debug=True, clock=lambda: SIM_TIME)
    assert [nsm.describe_pcr(i)[1] for i in range(3)] == [bytes(48)] * 3
    assert any(nsm.describe_pcr(4)[1])


def test_describe_pcr_reports_lock_state(nsm: SimulatedNsm) -> None:
    locked, value = nsm.describe_pcr(0)
    assert locked and len(value) == 48


def test_extend_pcr_is_sha384_chain() -> None:
    nsm = SimulatedNsm(clock=lambda: SIM_TIME)
    value = nsm.extend_pcr(16, b"data")
    assert value == hashlib.sha384(bytes(48) + b"data").digest()
    assert nsm.describe_pcr(16) == (False, value)


def test_get_random_returns_requested_length(nsm: SimulatedNsm) -> None:
    assert len(nsm.get_random(33)) == 33
    assert nsm.get_random(32) != nsm.get_random(32)


def test_leaf_is_renewed_when_clock_passes_its_expiry() -> None:
    now = [SIM_TIME]
    nsm = SimulatedNsm(clock=lambda: now[0])
    first = nsm.pki.leaf.certificate
    now[0] = SIM_TIME + timedelta(hours=5)
    raw = nsm.attest()
    assert nsm.pki.leaf.certificate != first
    assert verify_attestation(raw, PcrsEqual({0: nsm.describe_pcr(0)[1]}), root=nsm.root_certificate, at=now[0])


def test_unset_high_pcr_reads_as_unlocked_zeros(nsm: SimulatedNsm) -> None:
    assert nsm.describe_pcr(20) == (False, bytes(48))


def test_pcr_index_out_of_range_refused(nsm: SimulatedNsm) -> None:
    with pytest.raises(ValueError):
        nsm.describe_pcr(32)
