"""The signed form of a manifest: a COSE_Sign1 (CBOR tag 18) whose payload is the manifest's
exact JSON bytes, protected header ``{1: -35 (ES384), 3: CONTENT_TYPE}`` (checked by
``trustdial_verifier._internal.measurements.headers``), signature raw r‖s (48 + 48 bytes) over SHA-384 of the COSE
Sig_structure."""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustdial_verifier._internal import cose_sign1
from trustdial_verifier._internal.cose_sign1 import (
    COSE_SIGN1_TAG,
    COSE_SIGN1_TAG_HEAD,
    HEADER_ALG,
    HEADER_CONTENT_TYPE,
    HEADER_KID,
    CoseError,
    CoseSign1,
    TagRule,
)
from trustdial_verifier._internal.measurements.errors import ManifestError
from trustdial_verifier._internal.measurements.headers import CONTENT_TYPE, ES384, check_headers
from trustdial_verifier._internal.measurements.manifest import Manifest, parse_manifest

__all__ = ["COSE_SIGN1_TAG", "encode_signed_manifest", "load_signed_manifest", "protected_header", "signed_payload"]
#: A signed manifest is a few KiB; the EIF-wide one with every model and zk pin stays far below this.
MAX_SIGNED_MANIFEST_BYTES = 1 << 20
#: What a missing or unusable signature is reported as; every other envelope problem is MANIFEST_BAD_ENVELOPE.
_NOT_SIGNED_CODES = frozenset({"COSE_TAG", "COSE_SIGNATURE_TYPE"})


def protected_header() -> bytes:
    return cose_sign1.encode_header({HEADER_ALG: ES384, HEADER_CONTENT_TYPE: CONTENT_TYPE})


def to_be_signed(protected: bytes, payload: bytes) -> bytes:
    """The COSE Sig_structure for a COSE_Sign1 with no external AAD."""
    return cose_sign1.sig_structure(protected, payload)


def encode_signed_manifest(protected: bytes, manifest: bytes, signature: bytes, *, key_id: bytes) -> bytes:
    """The signed manifest's bytes: a tag-18 COSE_Sign1 with ``kid`` (4) in the unprotected header."""
    return cose_sign1.encode_cose_sign1(protected, manifest, signature, unprotected={HEADER_KID: key_id}, tagged=True)


def load_public_key(pem_or_der: bytes) -> ec.EllipticCurvePublicKey:
    try:
        if pem_or_der.lstrip().startswith(b"-----"):
            key = serialization.load_pem_public_key(pem_or_der)
        else:
            key = serialization.load_der_public_key(pem_or_der)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise ManifestError("MANIFEST_BAD_KEY", f"public key is not a PEM/DER SubjectPublicKeyInfo: {err}") from err
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise ManifestError("MANIFEST_BAD_KEY", "manifest signing key must be an EC P-384 public key")
    return key


def _decode(data: bytes) -> CoseSign1:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ManifestError(
            "MANIFEST_NOT_SIGNED", f"expected the signed manifest as bytes, found {type(data).__name__}"
        )
    try:
        message = cose_sign1.decode_cose_sign1(data, tag=TagRule.REQUIRED, max_bytes=MAX_SIGNED_MANIFEST_BYTES)
    except CoseError as err:
        if err.code.startswith("CBOR_"):
            # starting with tag 18 it claims to be a COSE_Sign1 whose inside is malformed; otherwise it is not one
            code = "MANIFEST_BAD_ENVELOPE" if bytes(data[:1]) == COSE_SIGN1_TAG_HEAD else "MANIFEST_NOT_SIGNED"
        else:
            code = "MANIFEST_NOT_SIGNED" if err.code in _NOT_SIGNED_CODES else "MANIFEST_BAD_ENVELOPE"
        raise ManifestError(code, f"not a COSE_Sign1 this verifier accepts: {err.reason} ({err.code})") from None
    if not message.signature:
        raise ManifestError("MANIFEST_NOT_SIGNED", "COSE_Sign1 carries no signature")
    return message


def signed_payload(data: bytes) -> bytes:
    """The manifest bytes inside a signed manifest, WITHOUT checking the signature."""
    return _decode(data).payload


def load_signed_manifest(data: bytes, public_key: Any) -> Manifest:
    """Verify ``data`` (a signed manifest) with ``public_key`` (P-384 key object, PEM or DER bytes)."""
    key = public_key if isinstance(public_key, ec.EllipticCurvePublicKey) else load_public_key(bytes(public_key))
    if not isinstance(key.curve, ec.SECP384R1):
        raise ManifestError("MANIFEST_BAD_KEY", "manifest signing key must be an EC P-384 public key")
    message = _decode(data)
    check_headers(message.protected, message.unprotected)
    try:
        cose_sign1.verify_signature(message, ES384, key)
    except CoseError as err:
        reason = (
            err.reason
            if err.code == "COSE_SIGNATURE_LENGTH"
            else "signature does not verify with the given public key (tampered or wrong key)"
        )
        raise ManifestError("MANIFEST_BAD_SIGNATURE", reason) from None
    return parse_manifest(message.payload)
