"""COSE_Sign1 (RFC 9052 §4.2) as the Nitro Security Module emits it: ES384 only.

The envelope is ``[protected: bstr, unprotected: map, payload: bstr, signature: bstr]``,
optionally wrapped in CBOR tag 18. The signature is checked over the ``Sig_structure``
built from the protected header and payload byte strings exactly as received.
"""

from __future__ import annotations

from dataclasses import dataclass

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from trustdial_verifier._internal import strict_cbor
from trustdial_verifier._internal.attestation.errors import DocumentFormatError, SignatureError
from trustdial_verifier.errors import describe_value

COSE_SIGN1_TAG = 18
COSE_SIGN1_TAG_HEAD = b"\xd2"  # tag 18, one-byte head
HEADER_ALG = 1
ALG_ES384 = -35
ES384_SIGNATURE_BYTES = 96
SIGNATURE1_CONTEXT = "Signature1"
_ECDSA_SHA384 = ec.ECDSA(hashes.SHA384())


@dataclass(frozen=True)
class CoseSign1:
    """The four parts of a COSE_Sign1 message, byte strings as received."""

    protected: bytes
    unprotected: dict[strict_cbor.CborKey, strict_cbor.CborValue]
    payload: bytes
    signature: bytes


def parse_cose_sign1(data: bytes) -> CoseSign1:
    """Decode and shape-check an ES384 COSE_Sign1 message (tag 18 optional)."""
    if data[:1] and data[0] >> 5 == strict_cbor.MAJOR_TAG and data[:1] != COSE_SIGN1_TAG_HEAD:
        raise DocumentFormatError("COSE_SHAPE", f"expected no tag or tag {COSE_SIGN1_TAG}, found another tag")
    value = decode_cbor(data, tags=frozenset({COSE_SIGN1_TAG}))
    if isinstance(value, strict_cbor.CborTag):
        if value.tag != COSE_SIGN1_TAG:
            raise DocumentFormatError("COSE_SHAPE", f"expected no tag or tag {COSE_SIGN1_TAG}, found tag {value.tag}")
        value = value.value
    if not isinstance(value, list) or len(value) != 4:
        found = f"array of {len(value)}" if isinstance(value, list) else type(value).__name__
        raise DocumentFormatError("COSE_SHAPE", f"expected a COSE_Sign1 array of 4 elements, found {found}")
    protected, unprotected, payload, signature = value
    if not isinstance(protected, bytes):
        raise DocumentFormatError("COSE_SHAPE", f"expected protected header as bstr, found {_kind(protected)}")
    if not isinstance(unprotected, dict):
        raise DocumentFormatError("COSE_SHAPE", f"expected unprotected header as map, found {_kind(unprotected)}")
    if not isinstance(payload, bytes):
        raise DocumentFormatError("COSE_SHAPE", f"expected payload as bstr, found {_kind(payload)}")
    if not isinstance(signature, bytes):
        raise DocumentFormatError("COSE_SHAPE", f"expected signature as bstr, found {_kind(signature)}")
    _check_protected_header(protected)
    if unprotected:
        raise DocumentFormatError(
            "COSE_SHAPE", f"expected an empty unprotected header, found {len(unprotected)} entries"
        )
    if len(signature) != ES384_SIGNATURE_BYTES:
        raise DocumentFormatError(
            "COSE_SHAPE", f"expected a {ES384_SIGNATURE_BYTES}-byte ES384 signature (r||s), found {len(signature)}"
        )
    return CoseSign1(protected, unprotected, payload, signature)


def _check_protected_header(protected: bytes) -> None:
    header = decode_cbor(protected)
    if not isinstance(header, dict):
        raise DocumentFormatError("COSE_SHAPE", f"expected protected header to encode a map, found {_kind(header)}")
    if header != {HEADER_ALG: ALG_ES384}:
        raise DocumentFormatError(
            "COSE_ALGORITHM",
            f"expected protected header {{1: -35}} (alg ES384 only), found a map of {len(header)} entries"
            + (f" with alg {describe_value(header.get(HEADER_ALG))}" if HEADER_ALG in header else " without alg"),
        )


def decode_cbor(data: bytes, *, tags: frozenset[int] = strict_cbor.NO_TAGS) -> strict_cbor.CborValue:
    """Strictly decode ``data`` (only ``tags`` allowed); CBOR problems are reported as :class:`DocumentFormatError`
    with the reader's code."""
    try:
        return strict_cbor.decode(data, tags=tags)
    except strict_cbor.CborError as err:
        raise DocumentFormatError(err.code, err.reason) from None


def sig_structure(protected: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    """The to-be-signed bytes: ``["Signature1", protected, external_aad, payload]`` (RFC 9052 §4.4)."""
    return cbor2.dumps([SIGNATURE1_CONTEXT, protected, external_aad, payload])


def verify_es384(message: CoseSign1, public_key: ec.EllipticCurvePublicKey) -> None:
    """Check the raw r||s ES384 signature with a P-384 key; raise ``COSE_SIGNATURE`` if it fails."""
    if not isinstance(public_key.curve, ec.SECP384R1):
        raise SignatureError("COSE_SIGNATURE", f"expected a P-384 signing key, found curve {public_key.curve.name}")
    half = ES384_SIGNATURE_BYTES // 2
    r = int.from_bytes(message.signature[:half], "big")
    s = int.from_bytes(message.signature[half:], "big")
    try:
        public_key.verify(encode_dss_signature(r, s), sig_structure(message.protected, message.payload), _ECDSA_SHA384)
    except InvalidSignature:
        raise SignatureError(
            "COSE_SIGNATURE", "expected an ES384 signature by the leaf certificate's key over the payload as received"
        ) from None


def _kind(value: object) -> str:
    return type(value).__name__
