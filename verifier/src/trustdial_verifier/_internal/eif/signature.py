"""The EIF signature section: CBOR ``[{"signing_certificate": [u8...], "signature": [u8...]}]``
(byte strings serialized as arrays of integers), the signature being an untagged COSE_Sign1
over the CBOR map ``{"register_index": 0, "register_value": [48 x u8 of PCR0]}``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustdial_verifier._internal import cose_sign1, strict_cbor
from trustdial_verifier._internal.cose_sign1 import ECDSA_ALGORITHMS, HEADER_ALG, CoseError, CoseSign1, TagRule
from trustdial_verifier._internal.eif.errors import EifError
from trustdial_verifier._internal.eif.pcr import pcr_from_digest
from trustdial_verifier.errors import describe_value

#: Byte strings in the section are arrays of integers, one data item per byte: a certificate of tens of KiB fits.
MAX_SECTION_ITEMS = 1 << 16
MAX_SECTION_BYTES = 1 << 20


def _decode(data: bytes, what: str, tags: frozenset[int] = strict_cbor.NO_TAGS) -> Any:
    try:
        return strict_cbor.decode(data, tags=tags, max_bytes=MAX_SECTION_BYTES, max_items=MAX_SECTION_ITEMS)
    except strict_cbor.CborError as err:
        raise _bad(f"{what} is not CBOR this verifier accepts: {err.reason} ({err.code})") from None


@dataclass(frozen=True)
class EifSignature:
    """A signed EIF's signature section: the signing certificate and the COSE_Sign1 over PCR0, checked."""

    certificate_pem: bytes
    certificate_der: bytes
    cose_sign1: bytes
    pcr8: str
    algorithm: int
    subject: str


def _bad(reason: str) -> EifError:
    return EifError("EIF_BAD_SIGNATURE_SECTION", reason)


def _int_array_bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, list):
        raise _bad(f"{what} must be a CBOR array of byte values, found {type(value).__name__}")
    try:
        return bytes(value)
    except (TypeError, ValueError) as err:
        raise _bad(f"{what} holds a value that is not a byte (0..255): {err}") from err


def parse_signature_section(data: bytes) -> tuple[bytes, bytes]:
    """Return (certificate PEM bytes, COSE_Sign1 bytes) of the first (and only used) entry."""
    decoded = _decode(data, "signature section")
    if not isinstance(decoded, list) or not decoded:
        raise _bad("signature section must be a non-empty CBOR array of PcrSignature maps")
    first = decoded[0]
    if not isinstance(first, dict) or set(first) != {"signing_certificate", "signature"}:
        raise _bad("PcrSignature must be a map with exactly 'signing_certificate' and 'signature'")
    return (
        _int_array_bytes(first["signing_certificate"], "signing_certificate"),
        _int_array_bytes(first["signature"], "signature"),
    )


def _decode_cose(cose: bytes) -> tuple[CoseSign1, int]:
    try:
        message = cose_sign1.decode_cose_sign1(
            cose, tag=TagRule.OPTIONAL, max_bytes=MAX_SECTION_BYTES, max_items=MAX_SECTION_ITEMS
        )
        header = cose_sign1.decode_protected_header(message.protected, max_bytes=MAX_SECTION_BYTES)
    except CoseError as err:
        raise _bad(f"signature is not a COSE_Sign1 this verifier accepts: {err.reason} ({err.code})") from None
    alg = header.get(HEADER_ALG)
    if type(alg) is not int:
        raise _bad("COSE protected header lacks an integer 'alg' (label 1)")
    return message, alg


def verify_signature_section(data: bytes, pcr0: str) -> EifSignature:
    """Parse the section, check the COSE_Sign1 signature with the embedded certificate's key,
    and check it signs PCR0 of this image. Return the details, including PCR8."""
    pem, cose = parse_signature_section(data)
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as err:
        raise _bad(f"signing_certificate is not a PEM X.509 certificate: {err}") from err
    der = certificate.public_bytes(serialization.Encoding.DER)
    pcr8 = pcr_from_digest(hashlib.sha384(der).digest())
    message, alg = _decode_cose(cose)
    if alg not in ECDSA_ALGORITHMS:
        raise _bad(f"COSE algorithm {alg} is not one of ES256 (-7), ES384 (-35), ES512 (-36)")
    curve_cls = ECDSA_ALGORITHMS[alg].curve
    try:
        public_key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as err:
        raise _bad(f"signing_certificate carries a public key that cannot be read: {err}") from err
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, curve_cls):
        raise EifError(
            "EIF_SIGNATURE_INVALID", f"certificate key does not match COSE algorithm {alg} (expected {curve_cls.name})"
        )
    pcr_info = _decode(message.payload, "signed payload")
    if not isinstance(pcr_info, dict) or set(pcr_info) != {"register_index", "register_value"}:
        raise _bad("signed payload must be a PcrInfo map with 'register_index' and 'register_value'")
    if type(pcr_info["register_index"]) is not int or pcr_info["register_index"] != 0:
        raise EifError(
            "EIF_SIGNATURE_INVALID",
            f"signature covers register {describe_value(pcr_info['register_index'])}, expected PCR0 (0)",
        )
    signed_value = _int_array_bytes(pcr_info["register_value"], "register_value").hex()
    if signed_value != pcr0:
        raise EifError("EIF_SIGNATURE_INVALID", f"signature is over PCR0 {signed_value}, the image has PCR0 {pcr0}")
    try:
        cose_sign1.verify_signature(message, alg, public_key)
    except CoseError as err:
        reason = (
            err.reason
            if err.code == "COSE_SIGNATURE_LENGTH"
            else "COSE_Sign1 signature does not verify with the certificate"
        )
        raise EifError("EIF_SIGNATURE_INVALID", reason) from None
    return EifSignature(
        certificate_pem=pem,
        certificate_der=der,
        cose_sign1=cose,
        pcr8=pcr8,
        algorithm=alg,
        subject=certificate.subject.rfc4514_string(),
    )
