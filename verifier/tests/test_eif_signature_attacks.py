"""Attacks on the EIF signature section (an image handed over for checking is attacker input):
every malformed certificate or COSE structure is a typed EifError, and a signature only counts
for the PCR0 and key it names."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from trustdial_verifier._internal.eif import EifError
from trustdial_verifier._internal.eif.signature import verify_signature_section

PCR0 = bytes(range(48))
EC_PUBLIC_KEY_OID = bytes.fromhex("06072a8648ce3d0201")  # DER OID 1.2.840.10045.2.1 (id-ecPublicKey)


def _certificate(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "red team signer")])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA384()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.DER)


def _pem(der: bytes) -> bytes:
    return b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"


def _section(certificate_der: bytes, key: ec.EllipticCurvePrivateKey, pcr0: bytes = PCR0, alg: int = -35) -> bytes:
    protected = cbor2.dumps({1: alg})
    payload = cbor2.dumps({"register_index": 0, "register_value": list(pcr0)})
    der = key.sign(cbor2.dumps(["Signature1", protected, b"", payload]), ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der)
    cose = cbor2.dumps([protected, {}, payload, r.to_bytes(48, "big") + s.to_bytes(48, "big")])
    return cbor2.dumps([{"signing_certificate": list(_pem(certificate_der)), "signature": list(cose)}])


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def _code(section: bytes, pcr0: bytes = PCR0) -> str:
    with pytest.raises(EifError) as caught:
        verify_signature_section(section, pcr0.hex())
    return caught.value.code


def test_genuine_section_is_accepted(key: ec.EllipticCurvePrivateKey) -> None:
    assert verify_signature_section(_section(_certificate(key), key), PCR0.hex()).algorithm == -35


def test_certificate_with_an_unknown_key_algorithm_is_a_typed_error(key: ec.EllipticCurvePrivateKey) -> None:
    der = _certificate(key)
    assert der.count(EC_PUBLIC_KEY_OID) == 1
    unknown = der.replace(EC_PUBLIC_KEY_OID, EC_PUBLIC_KEY_OID[:-1] + b"\x09")
    assert _code(_section(unknown, key)) == "EIF_BAD_SIGNATURE_SECTION"


def test_signature_over_another_images_pcr0_is_rejected(key: ec.EllipticCurvePrivateKey) -> None:
    assert _code(_section(_certificate(key), key, pcr0=b"\x11" * 48)) == "EIF_SIGNATURE_INVALID"


def test_certificate_of_another_key_is_rejected(key: ec.EllipticCurvePrivateKey) -> None:
    other = ec.generate_private_key(ec.SECP384R1())
    assert _code(_section(_certificate(other), key)) == "EIF_SIGNATURE_INVALID"


def test_es512_claimed_for_a_p384_certificate_is_rejected(key: ec.EllipticCurvePrivateKey) -> None:
    assert _code(_section(_certificate(key), key, alg=-36)) == "EIF_SIGNATURE_INVALID"


def test_ed25519_certificate_is_rejected(key: ec.EllipticCurvePrivateKey) -> None:
    assert _code(_section(_certificate(ed25519.Ed25519PrivateKey.generate()), key)) == "EIF_SIGNATURE_INVALID"
