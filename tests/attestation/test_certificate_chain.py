"""Certificate-path details: DER name extraction, the pinned root, the intermediate cache."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import cbor2
import pytest
from attestation_vectors import GENUINE, NITRO_DIR, SIM_TIME, Vector
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store, VerificationError
from trustdial_verifier._internal.attestation.certificate_chain import IntermediateCache, _tbs_names, verify_chain
from trustdial_verifier._internal.attestation.errors import CertificateChainError
from trustdial_verifier._internal.attestation.nitro_root import AWS_NITRO_ROOT_G1, AWS_NITRO_ROOT_G1_SHA256

from enclave_app.nsm.simulated import SimulatedNsm

# Published by AWS and recorded in tests/data/nitro/INDEX.md.
PUBLISHED_FINGERPRINT = (
    "64:1A:03:21:A3:E2:44:EF:E4:56:46:31:95:D6:06:31:7E:D7:CD:CC:3C:17:56:E0:98:93:F3:C6:8F:79:BB:5B"
)


def chain_of(vector: Vector) -> list[x509.Certificate]:
    payload = cbor2.loads(cbor2.loads(vector.raw)[2])
    return [x509.load_der_x509_certificate(der) for der in [*payload["cabundle"], payload["certificate"]]]


@pytest.mark.parametrize("vector", GENUINE[:6], ids=lambda v: v.name.removesuffix(".cbor"))
def test_tbs_names_match_cryptography_encoding(vector: Vector) -> None:
    for certificate in chain_of(vector):
        issuer, subject = _tbs_names(certificate.tbs_certificate_bytes)
        assert issuer == certificate.issuer.public_bytes()
        assert subject == certificate.subject.public_bytes()


def test_pinned_root_has_published_fingerprint() -> None:
    expected = PUBLISHED_FINGERPRINT.replace(":", "").lower()
    assert AWS_NITRO_ROOT_G1_SHA256 == expected
    assert hashlib.sha256(AWS_NITRO_ROOT_G1.public_bytes(Encoding.DER)).hexdigest() == expected


def test_pinned_root_equals_the_shipped_test_copy() -> None:
    copy = x509.load_pem_x509_certificate((NITRO_DIR / "aws_nitro_root_g1.pem").read_bytes())
    assert copy == AWS_NITRO_ROOT_G1


def test_cached_and_uncached_paths_agree_on_every_genuine_vector() -> None:
    cache = IntermediateCache()
    for vector in GENUINE:
        payload = cbor2.loads(cbor2.loads(vector.raw)[2])
        args = (AWS_NITRO_ROOT_G1, tuple(payload["cabundle"]), payload["certificate"], vector.at)
        cold = verify_chain(*args)
        verify_chain(*args, cache)
        warm = verify_chain(*args, cache)
        assert cold.public_numbers() == warm.public_numbers()


def test_cache_is_bounded() -> None:
    cache = IntermediateCache(max_entries=2)
    vectors = GENUINE[:4]
    for vector in vectors:
        payload = cbor2.loads(cbor2.loads(vector.raw)[2])
        verify_chain(AWS_NITRO_ROOT_G1, tuple(payload["cabundle"]), payload["certificate"], vector.at, cache)
    assert len(cache._paths) <= 2


def oracle_accepts(root: x509.Certificate, cabundle: list[bytes], leaf_der: bytes, at: datetime) -> bool:
    """Independent answer: cryptography's own path validation (webpki CA rules, any leaf extensions)."""
    builder = PolicyBuilder().store(Store([root])).time(at.replace(tzinfo=None))
    builder = builder.extension_policies(
        ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all()
    )
    intermediates = [x509.load_der_x509_certificate(der) for der in cabundle[1:]]
    try:
        builder.build_client_verifier().verify(x509.load_der_x509_certificate(leaf_der), intermediates)
    except VerificationError:
        return False
    return True


def ours_accepts(root: x509.Certificate, cabundle: list[bytes], leaf_der: bytes, at: datetime) -> bool:
    try:
        verify_chain(root, tuple(cabundle), leaf_der, at)
    except CertificateChainError:
        return False
    return True


@pytest.mark.parametrize("shift", [timedelta(0), timedelta(days=1)], ids=["at_doc_time", "one_day_later"])
@pytest.mark.parametrize("vector", GENUINE, ids=lambda v: v.name.removesuffix(".cbor"))
def test_chain_verdict_agrees_with_cryptography_path_validation(vector: Vector, shift: timedelta) -> None:
    payload = cbor2.loads(cbor2.loads(vector.raw)[2])
    args = (AWS_NITRO_ROOT_G1, payload["cabundle"], payload["certificate"], vector.at + shift)
    assert ours_accepts(*args) == oracle_accepts(*args) == (shift == timedelta(0))


def test_simulator_chain_passes_cryptography_path_validation(nsm: SimulatedNsm) -> None:
    payload = cbor2.loads(cbor2.loads(nsm.attest())[2])
    assert oracle_accepts(nsm.root_certificate, payload["cabundle"], payload["certificate"], SIM_TIME)
