"""The signed form of a manifest: a COSE_Sign1 (CBOR tag 18) whose payload is the manifest's
exact JSON bytes, protected header ``{1: -35 (ES384), 3: CONTENT_TYPE}`` (checked by
``trustdial_verifier._internal.measurements.headers``), signature raw r‖s (48 + 48 bytes) over SHA-384 of the COSE
Sig_structure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from trustdial_verifier._internal import strict_cbor
from trustdial_verifier._internal.measurements.errors import ManifestError
from trustdial_verifier._internal.measurements.headers import CONTENT_TYPE, ES384, check_headers
from trustdial_verifier._internal.measurements.manifest import Manifest, parse_manifest

COSE_SIGN1_TAG = strict_cbor.TAG_COSE_SIGN1
#: A signed manifest is a few KiB; the EIF-wide one with every model and zk pin stays far below this.
MAX_SIGNED_MANIFEST_BYTES = 1 << 20
TAG_18_HEAD = b"\xd2"


def protected_header() -> bytes:
    return cbor2.dumps({1: ES384, 3: CONTENT_TYPE})


def to_be_signed(protected: bytes, payload: bytes) -> bytes:
    """The COSE Sig_structure for a COSE_Sign1 with no external AAD."""
    return cbor2.dumps(["Signature1", protected, b"", payload])


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


def _decode(data: bytes) -> tuple[bytes, Mapping[Any, Any], bytes, bytes]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ManifestError(
            "MANIFEST_NOT_SIGNED", f"expected the signed manifest as bytes, found {type(data).__name__}"
        )
    try:
        item = strict_cbor.decode(data, tags=frozenset({COSE_SIGN1_TAG}), max_bytes=MAX_SIGNED_MANIFEST_BYTES)
    except strict_cbor.CborError as err:
        # starting with tag 18 it claims to be a COSE_Sign1 whose inside is malformed; otherwise it is not one
        code = "MANIFEST_BAD_ENVELOPE" if bytes(data[:1]) == TAG_18_HEAD else "MANIFEST_NOT_SIGNED"
        raise ManifestError(code, f"not a COSE_Sign1 this verifier accepts: {err.reason} ({err.code})") from None
    if not isinstance(item, strict_cbor.CborTag) or item.tag != COSE_SIGN1_TAG:
        raise ManifestError("MANIFEST_NOT_SIGNED", "expected a COSE_Sign1 (CBOR tag 18)")
    value = item.value
    if not isinstance(value, list) or len(value) != 4:
        raise ManifestError("MANIFEST_BAD_ENVELOPE", "COSE_Sign1 must be an array of 4 elements")
    protected, unprotected, payload, signature = value
    if not isinstance(protected, bytes) or not isinstance(unprotected, Mapping):
        raise ManifestError("MANIFEST_BAD_ENVELOPE", "COSE_Sign1 headers have the wrong types")
    if not isinstance(payload, bytes):
        raise ManifestError("MANIFEST_BAD_ENVELOPE", "COSE_Sign1 payload must be an attached byte string")
    if not isinstance(signature, bytes) or not signature:
        raise ManifestError("MANIFEST_NOT_SIGNED", "COSE_Sign1 carries no signature")
    return protected, unprotected, payload, signature


def signed_payload(data: bytes) -> bytes:
    """The manifest bytes inside a signed manifest, WITHOUT checking the signature."""
    return _decode(data)[2]


def load_signed_manifest(data: bytes, public_key: Any) -> Manifest:
    """Verify ``data`` (a signed manifest) with ``public_key`` (P-384 key object, PEM or DER bytes)."""
    key = public_key if isinstance(public_key, ec.EllipticCurvePublicKey) else load_public_key(bytes(public_key))
    if not isinstance(key.curve, ec.SECP384R1):
        raise ManifestError("MANIFEST_BAD_KEY", "manifest signing key must be an EC P-384 public key")
    protected, unprotected, payload, signature = _decode(data)
    check_headers(protected, unprotected)
    if len(signature) != 96:
        raise ManifestError("MANIFEST_BAD_SIGNATURE", f"ES384 signature must be 96 bytes, found {len(signature)}")
    der = encode_dss_signature(int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big"))
    try:
        key.verify(der, to_be_signed(protected, payload), ec.ECDSA(hashes.SHA384()))
    except InvalidSignature as err:
        raise ManifestError(
            "MANIFEST_BAD_SIGNATURE", "signature does not verify with the given public key (tampered or wrong key)"
        ) from err
    return parse_manifest(payload)
