"""Each check of verify_attestation, exercised with simulator documents that break exactly one rule."""

from __future__ import annotations

from datetime import timedelta

import cbor2
import pytest
from attestation_vectors import DATA_DIR, SIM_TIME
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from trustdial_verifier._internal.attestation.verify import (
    MAX_DOCUMENT_BYTES,
    AllOf,
    AttestationError,
    IntermediateCache,
    NonceEquals,
    PcrsEqual,
    UnsafeNoPolicy,
    read_unverified_timestamp,
    verify_attestation,
)
from trustdial_verifier._internal.cose_sign1 import sig_structure
from trustdial_verifier.errors import InputError

from enclave_app.nsm import simulated_pki
from enclave_app.nsm.simulated import SimulatedNsm


def pcr_policy(nsm: SimulatedNsm) -> PcrsEqual:
    return PcrsEqual({index: nsm.describe_pcr(index)[1] for index in (0, 1, 2)})


def rejection(raw: bytes, nsm: SimulatedNsm, **options: object) -> str:
    options.setdefault("at", SIM_TIME)
    with pytest.raises(AttestationError) as caught:
        verify_attestation(raw, pcr_policy(nsm), root=nsm.root_certificate, **options)  # type: ignore[arg-type]
    return caught.value.code


def signed_fields(nsm: SimulatedNsm, **changes: object) -> bytes:
    fields = nsm.payload_fields()
    fields.update(changes)
    return nsm.sign(cbor2.dumps(fields))


def test_valid_simulator_document_accepted(nsm: SimulatedNsm) -> None:
    verify_attestation(nsm.attest(), pcr_policy(nsm), root=nsm.root_certificate, at=SIM_TIME)


# --- trust anchor and chain -------------------------------------------------------------------------------------


def test_pinned_aws_root_rejects_simulator_document(nsm: SimulatedNsm) -> None:
    with pytest.raises(AttestationError) as caught:
        verify_attestation(nsm.attest(), pcr_policy(nsm), at=SIM_TIME)
    assert caught.value.code == "CHAIN_ROOT_MISMATCH"


def test_other_simulator_root_rejects_document(nsm: SimulatedNsm) -> None:
    other = SimulatedNsm(clock=lambda: SIM_TIME)
    with pytest.raises(AttestationError) as caught:
        verify_attestation(nsm.attest(), pcr_policy(nsm), root=other.root_certificate, at=SIM_TIME)
    assert caught.value.code == "CHAIN_ROOT_MISMATCH"


def test_document_root_copy_with_foreign_intermediates_rejected(nsm: SimulatedNsm) -> None:
    """cabundle[0] names the trusted root but the intermediates hang off an attacker's root."""
    attacker = SimulatedNsm(pcrs={i: nsm.describe_pcr(i)[1] for i in range(3)}, clock=lambda: SIM_TIME)
    fields = attacker.payload_fields()
    fields["cabundle"][0] = nsm.payload_fields()["cabundle"][0]
    assert rejection(attacker.sign(cbor2.dumps(fields)), nsm) in {"CHAIN_NAME", "CHAIN_SIGNATURE"}


def test_expired_leaf_rejected(nsm: SimulatedNsm) -> None:
    assert rejection(nsm.attest(), nsm, at=SIM_TIME + timedelta(hours=4)) == "CERT_TIME"


def test_leaf_not_yet_valid_rejected(nsm: SimulatedNsm) -> None:
    assert rejection(nsm.attest(), nsm, at=SIM_TIME - timedelta(minutes=1)) == "CERT_TIME"


def test_expired_intermediate_rejected_even_when_cached(nsm: SimulatedNsm) -> None:
    cache = IntermediateCache()
    raw = nsm.attest()
    verify_attestation(raw, pcr_policy(nsm), root=nsm.root_certificate, at=SIM_TIME, cache=cache)
    assert rejection(raw, nsm, at=SIM_TIME + timedelta(days=2), cache=cache) == "CERT_TIME"


def test_cached_intermediate_does_not_vouch_for_another_root(nsm: SimulatedNsm) -> None:
    cache = IntermediateCache()
    verify_attestation(nsm.attest(), pcr_policy(nsm), root=nsm.root_certificate, at=SIM_TIME, cache=cache)
    other = SimulatedNsm(clock=lambda: SIM_TIME)
    with pytest.raises(AttestationError):
        verify_attestation(nsm.attest(), pcr_policy(nsm), root=other.root_certificate, at=SIM_TIME, cache=cache)


def _nsm_with_leaf(**leaf_options: object) -> SimulatedNsm:
    base = simulated_pki.build_pki(SIM_TIME, "us-east-1", "i-0123456789abcdef0", "i-0123456789abcdef0-enc01")
    options: dict[str, object] = {
        "not_before": SIM_TIME - timedelta(minutes=1),
        "lifetime": timedelta(hours=3),
        "ca": False,
        "path_length": None,
        "key_usage": _usage(digital_signature=True),
    }
    options.update(leaf_options)
    leaf = simulated_pki.issue(
        simulated_pki.name("leaf"),
        simulated_pki.new_key(),
        base.intermediates[-1],
        **options,  # type: ignore[arg-type]
    )
    return SimulatedNsm(clock=lambda: SIM_TIME, pki=simulated_pki.SimulatedPki(base.root, base.intermediates, leaf))


def _usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def test_custom_leaf_helper_builds_an_accepted_chain() -> None:
    nsm = _nsm_with_leaf()
    verify_attestation(nsm.attest(), pcr_policy(nsm), root=nsm.root_certificate, at=SIM_TIME)


def test_leaf_that_is_a_ca_rejected() -> None:
    nsm = _nsm_with_leaf(ca=True, path_length=None, key_usage=_usage(digital_signature=True, key_cert_sign=True))
    assert rejection(nsm.attest(), nsm) == "CHAIN_CONSTRAINT"


def test_leaf_without_digital_signature_usage_rejected() -> None:
    nsm = _nsm_with_leaf(key_usage=_usage(key_cert_sign=False))
    assert rejection(nsm.attest(), nsm) == "CHAIN_CONSTRAINT"


def test_leaf_signed_with_sha256_rejected() -> None:
    nsm = _nsm_with_leaf(hash_algorithm=hashes.SHA256())
    assert rejection(nsm.attest(), nsm) == "CHAIN_ALGORITHM"


def test_intermediate_without_key_cert_sign_rejected() -> None:
    base = simulated_pki.build_pki(SIM_TIME, "us-east-1", "i-1", "i-1-enc1")
    weak = simulated_pki.issue(
        simulated_pki.name("weak instance"),
        simulated_pki.new_key(),
        base.intermediates[1],
        not_before=SIM_TIME - timedelta(hours=1),
        lifetime=timedelta(days=1),
        ca=True,
        path_length=0,
        key_usage=_usage(digital_signature=True),
    )
    leaf = simulated_pki.issue_leaf(weak, SIM_TIME, "i-1-enc1", "us-east-1")
    pki = simulated_pki.SimulatedPki(base.root, (*base.intermediates[:2], weak), leaf)
    nsm = SimulatedNsm(clock=lambda: SIM_TIME, pki=pki)
    assert rejection(nsm.attest(), nsm) == "CHAIN_CONSTRAINT"


def test_chain_longer_than_path_length_allows_rejected() -> None:
    base = simulated_pki.build_pki(SIM_TIME, "us-east-1", "i-1", "i-1-enc1")
    extra = simulated_pki.issue(
        simulated_pki.name("below instance"),
        simulated_pki.new_key(),
        base.intermediates[-1],  # instance has pathLen 0: no CA may follow it
        not_before=SIM_TIME - timedelta(hours=1),
        lifetime=timedelta(days=1),
        ca=True,
        path_length=None,
        key_usage=_usage(key_cert_sign=True),
    )
    leaf = simulated_pki.issue_leaf(extra, SIM_TIME, "i-1-enc1", "us-east-1")
    nsm = SimulatedNsm(
        clock=lambda: SIM_TIME, pki=simulated_pki.SimulatedPki(base.root, (*base.intermediates, extra), leaf)
    )
    assert rejection(nsm.attest(), nsm) == "CHAIN_CONSTRAINT"


def test_leaf_from_another_chain_rejected(nsm: SimulatedNsm) -> None:
    other = SimulatedNsm(clock=lambda: SIM_TIME)
    fields = nsm.payload_fields()
    fields["certificate"] = other.payload_fields()["certificate"]
    assert rejection(nsm.sign(cbor2.dumps(fields)), nsm) == "CHAIN_NAME"


def test_garbage_certificate_rejected(nsm: SimulatedNsm) -> None:
    assert rejection(signed_fields(nsm, certificate=b"\x30\x03\x02\x01\x01"), nsm) == "CERT_MALFORMED"


# --- COSE envelope --------------------------------------------------------------------------------------------


def test_signature_by_other_key_rejected(nsm: SimulatedNsm) -> None:
    payload = cbor2.dumps(nsm.payload_fields())
    protected = cbor2.dumps({1: -35})
    der = ec.generate_private_key(ec.SECP384R1()).sign(sig_structure(protected, payload), ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der)
    raw = cbor2.dumps([protected, {}, payload, r.to_bytes(48, "big") + s.to_bytes(48, "big")])
    assert rejection(raw, nsm) == "COSE_SIGNATURE"


@pytest.mark.parametrize(
    "header", [{1: -7}, {1: "ES384"}, {1: -35, 4: b"kid"}, {}], ids=["es256", "text", "extra", "empty"]
)
def test_protected_header_other_than_es384_rejected(nsm: SimulatedNsm, header: dict[int, object]) -> None:
    raw = nsm.sign(cbor2.dumps(nsm.payload_fields()), protected=cbor2.dumps(header))
    assert rejection(raw, nsm) == "COSE_ALGORITHM"


def test_non_empty_unprotected_header_rejected(nsm: SimulatedNsm) -> None:
    protected, _, payload, signature = cbor2.loads(nsm.attest())
    assert rejection(cbor2.dumps([protected, {1: -35}, payload, signature]), nsm) == "COSE_SHAPE"


def test_der_encoded_signature_rejected(nsm: SimulatedNsm) -> None:
    protected, unprotected, payload, _ = cbor2.loads(nsm.attest())
    der = nsm.pki.leaf.key.sign(sig_structure(protected, payload), ec.ECDSA(hashes.SHA384()))
    assert rejection(cbor2.dumps([protected, unprotected, payload, der]), nsm) == "COSE_SHAPE"


def test_wrong_tag_rejected(nsm: SimulatedNsm) -> None:
    assert rejection(cbor2.dumps(cbor2.CBORTag(17, cbor2.loads(nsm.attest()))), nsm) == "COSE_SHAPE"


def test_three_element_array_rejected(nsm: SimulatedNsm) -> None:
    assert rejection(cbor2.dumps(cbor2.loads(nsm.attest())[:3]), nsm) == "COSE_SHAPE"


def test_trailing_bytes_after_document_rejected(nsm: SimulatedNsm) -> None:
    assert rejection(nsm.attest() + b"\x00", nsm) == "CBOR_TRAILING_BYTES"


def test_oversized_document_rejected(nsm: SimulatedNsm) -> None:
    raw = nsm.attest()
    assert rejection(raw + bytes(MAX_DOCUMENT_BYTES + 1 - len(raw)), nsm) == "DOCUMENT_TOO_LARGE"


# --- payload -------------------------------------------------------------------------------------------------


def test_payload_reencoded_after_signing_rejected() -> None:
    nsm = SimulatedNsm(indefinite_payload=True, clock=lambda: SIM_TIME)
    protected, unprotected, payload, signature = cbor2.loads(nsm.attest())
    definite = cbor2.dumps(cbor2.loads(payload))
    assert definite != payload
    assert rejection(cbor2.dumps([protected, unprotected, definite, signature]), nsm) == "COSE_SIGNATURE"


def test_duplicate_payload_key_rejected(nsm: SimulatedNsm) -> None:
    fields = nsm.payload_fields()
    body = b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in fields.items())
    forged_pcrs = cbor2.dumps("pcrs") + cbor2.dumps({0: bytes(48)})
    payload = bytes([0xA0 + len(fields) + 1 if len(fields) + 1 < 24 else 0]) + body + forged_pcrs
    assert rejection(nsm.sign(payload), nsm) == "CBOR_DUPLICATE_KEY"


def test_trailing_bytes_inside_payload_rejected(nsm: SimulatedNsm) -> None:
    assert rejection(nsm.sign(cbor2.dumps(nsm.payload_fields()) + b"\xf6"), nsm) == "CBOR_TRAILING_BYTES"


@pytest.mark.parametrize("field", ["nonce", "user_data", "public_key"])
def test_optional_field_of_1024_bytes_accepted(nsm: SimulatedNsm, field: str) -> None:
    raw = nsm.attest(**{field: b"\x01" * 1024})
    verify_attestation(raw, pcr_policy(nsm), root=nsm.root_certificate, at=SIM_TIME)


@pytest.mark.parametrize("field", ["nonce", "user_data", "public_key"])
def test_optional_field_of_1025_bytes_rejected(nsm: SimulatedNsm, field: str) -> None:
    assert rejection(nsm.attest(**{field: b"\x01" * 1025}), nsm) == "PAYLOAD_FIELD"


@pytest.mark.parametrize("field", ["nonce", "user_data"])
def test_empty_nonce_or_user_data_accepted(nsm: SimulatedNsm, field: str) -> None:
    verify_attestation(nsm.attest(**{field: b""}), pcr_policy(nsm), root=nsm.root_certificate, at=SIM_TIME)


def test_empty_public_key_rejected(nsm: SimulatedNsm) -> None:
    assert rejection(nsm.attest(public_key=b""), nsm) == "PAYLOAD_FIELD"


def test_optional_fields_may_be_absent(nsm: SimulatedNsm) -> None:
    fields = nsm.payload_fields()
    for name in ("public_key", "user_data", "nonce"):
        del fields[name]
    verify_attestation(nsm.sign(cbor2.dumps(fields)), pcr_policy(nsm), root=nsm.root_certificate, at=SIM_TIME)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("digest", "SHA256"),
        ("module_id", ""),
        ("timestamp", 0),
        ("timestamp", "1"),
        ("pcrs", {}),
        ("pcrs", {0: bytes(47)}),
        ("pcrs", {32: bytes(48)}),
        ("cabundle", []),
        ("certificate", bytes(1025)),
        ("nonce", "text"),
    ],
    ids=[
        "digest",
        "module_id",
        "timestamp0",
        "timestamp_text",
        "pcrs_empty",
        "pcr_len",
        "pcr_index",
        "cabundle",
        "cert",
        "nonce_text",
    ],
)
def test_malformed_payload_field_rejected(nsm: SimulatedNsm, field: str, value: object) -> None:
    assert rejection(signed_fields(nsm, **{field: value}), nsm) == "PAYLOAD_FIELD"


def test_missing_mandatory_field_rejected(nsm: SimulatedNsm) -> None:
    fields = nsm.payload_fields()
    del fields["digest"]
    assert rejection(nsm.sign(cbor2.dumps(fields)), nsm) == "PAYLOAD_MISSING_FIELD"


def test_null_mandatory_field_rejected(nsm: SimulatedNsm) -> None:
    assert rejection(signed_fields(nsm, cabundle=None), nsm) == "PAYLOAD_MISSING_FIELD"


def test_unknown_payload_field_rejected(nsm: SimulatedNsm) -> None:
    assert rejection(signed_fields(nsm, extra=b"x"), nsm) == "PAYLOAD_UNKNOWN_FIELD"


def test_thirty_two_pcrs_accepted() -> None:
    nsm = SimulatedNsm({index: bytes([index + 1]) * 48 for index in range(32)}, clock=lambda: SIM_TIME)
    document = verify_attestation(
        nsm.attest(), PcrsEqual({31: bytes([32]) * 48}), root=nsm.root_certificate, at=SIM_TIME
    )
    assert len(document.pcrs) == 32


# --- debug mode and policy ------------------------------------------------------------------------------------


def test_debug_document_rejected_by_default() -> None:
    nsm = SimulatedNsm(debug=True, clock=lambda: SIM_TIME)
    assert rejection(nsm.attest(), nsm) == "DEBUG_MODE"


def test_debug_document_accepted_with_allow_debug() -> None:
    nsm = SimulatedNsm(debug=True, clock=lambda: SIM_TIME)
    document = verify_attestation(
        nsm.attest(), pcr_policy(nsm), root=nsm.root_certificate, at=SIM_TIME, allow_debug=True
    )
    assert document.debug_mode


def test_pcr_mismatch_rejected(nsm: SimulatedNsm) -> None:
    with pytest.raises(AttestationError) as caught:
        verify_attestation(nsm.attest(), PcrsEqual({0: b"\x11" * 48}), root=nsm.root_certificate, at=SIM_TIME)
    assert caught.value.code == "PCR_MISMATCH"


def test_expected_pcr_absent_from_document_rejected(nsm: SimulatedNsm) -> None:
    with pytest.raises(AttestationError) as caught:
        verify_attestation(nsm.attest(), PcrsEqual({20: bytes(48)}), root=nsm.root_certificate, at=SIM_TIME)
    assert caught.value.code == "PCR_MISSING"


def test_nonce_mismatch_rejected(nsm: SimulatedNsm) -> None:
    with pytest.raises(AttestationError) as caught:
        verify_attestation(nsm.attest(nonce=b"a" * 16), NonceEquals(b"b" * 16), root=nsm.root_certificate, at=SIM_TIME)
    assert caught.value.code == "NONCE_MISMATCH"


def test_missing_nonce_rejected_when_expected(nsm: SimulatedNsm) -> None:
    with pytest.raises(AttestationError) as caught:
        verify_attestation(nsm.attest(), NonceEquals(b"b" * 16), root=nsm.root_certificate, at=SIM_TIME)
    assert caught.value.code == "NONCE_MISMATCH"


def test_empty_policy_refused(nsm: SimulatedNsm) -> None:
    with pytest.raises(AttestationError) as caught:
        verify_attestation(nsm.attest(), AllOf([]), root=nsm.root_certificate, at=SIM_TIME)
    assert caught.value.code == "POLICY_EMPTY"


def test_missing_policy_refused(nsm: SimulatedNsm) -> None:
    with pytest.raises(AttestationError) as caught:
        verify_attestation(nsm.attest(), None, root=nsm.root_certificate, at=SIM_TIME)  # type: ignore[arg-type]
    assert caught.value.code == "POLICY_EMPTY"


def test_unsafe_no_policy_checks_cryptography_only(nsm: SimulatedNsm) -> None:
    verify_attestation(nsm.attest(), UnsafeNoPolicy(), root=nsm.root_certificate, at=SIM_TIME)


def test_naive_verification_time_is_an_input_error(nsm: SimulatedNsm) -> None:
    with pytest.raises(InputError):
        verify_attestation(nsm.attest(), pcr_policy(nsm), root=nsm.root_certificate, at=SIM_TIME.replace(tzinfo=None))


def test_timestamp_beyond_year_9999_rejected(nsm: SimulatedNsm) -> None:
    assert rejection(signed_fields(nsm, timestamp=(1 << 64) - 1), nsm) == "PAYLOAD_FIELD"


def test_fuzz_finding_timestamp_overflow_is_a_typed_rejection() -> None:
    raw = (DATA_DIR / "fuzz-findings" / "timestamp_year_overflow.bin").read_bytes()
    with pytest.raises(AttestationError):
        read_unverified_timestamp(raw)


class _VerdictReturningPolicy:
    """A custom policy written the wrong way: it returns a verdict instead of raising."""

    def verify(self, document: object, at: object) -> bool:
        return False


def test_policy_returning_a_value_is_a_rejection(nsm: SimulatedNsm) -> None:
    with pytest.raises(AttestationError) as caught:
        verify_attestation(nsm.attest(), _VerdictReturningPolicy(), root=nsm.root_certificate, at=SIM_TIME)  # type: ignore[arg-type]
    assert caught.value.code == "POLICY_RESULT"


def test_policy_returning_a_value_inside_all_of_is_a_rejection(nsm: SimulatedNsm) -> None:
    policy = AllOf([pcr_policy(nsm), _VerdictReturningPolicy()])  # type: ignore[list-item]
    with pytest.raises(AttestationError) as caught:
        verify_attestation(nsm.attest(), policy, root=nsm.root_certificate, at=SIM_TIME)
    assert caught.value.code == "POLICY_RESULT"
