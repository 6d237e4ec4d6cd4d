"""The seal: an untagged COSE_Sign1 (RFC 9052 §4.2) whose payload is an encoded batch root.

Protected header ``{1: alg, 3: "application/trustdial-batch-root+cbor"}`` with alg EdDSA (-8,
Ed25519) or ES256 (-7, P-256, signature r||s of 64 bytes); unprotected header empty; payload
attached. The signing key's SubjectPublicKeyInfo (DER) is the ``public_key`` of the
attestation document the batch root names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from trustdial_verifier._internal import strict_cbor
from trustdial_verifier._internal.receipts.errors import ReceiptError
from trustdial_verifier.errors import describe_value

ALG_EDDSA = -8
ALG_ES256 = -7
CONTENT_TYPE = "application/trustdial-batch-root+cbor"
MAX_SEAL_BYTES = 64 * 1024
ReceiptPublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class Seal:
    protected: bytes
    alg: int
    payload: bytes
    signature: bytes


def protected_header(alg: int) -> bytes:
    return cbor2.dumps({1: alg, 3: CONTENT_TYPE}, canonical=True)


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The bytes that are signed (RFC 9052 §4.4), with empty external AAD."""
    return cbor2.dumps(["Signature1", protected, b"", payload])


def load_receipt_key(spki_der: bytes) -> ReceiptPublicKey:
    """A receipt public key from DER SubjectPublicKeyInfo; only Ed25519 and P-256 are accepted."""
    try:
        key = serialization.load_der_public_key(spki_der)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise ReceiptError("RECEIPT_KEY", f"expected a DER SubjectPublicKeyInfo, could not parse it: {err}") from err
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise ReceiptError("RECEIPT_KEY", f"expected an Ed25519 or P-256 key, found {type(key).__name__}")


def alg_for_key(key: ReceiptPublicKey) -> int:
    return ALG_EDDSA if isinstance(key, ed25519.Ed25519PublicKey) else ALG_ES256


def decode_seal(raw: bytes) -> Seal:
    try:
        value: Any = strict_cbor.decode(raw, max_bytes=MAX_SEAL_BYTES)
    except strict_cbor.CborError as err:  # a tagged seal is refused too: the seal is an untagged COSE_Sign1
        raise ReceiptError(
            "RECEIPT_SEAL_MALFORMED", f"seal is not CBOR this verifier accepts: {err.reason} ({err.code})"
        ) from None
    if not isinstance(value, list) or len(value) != 4:
        raise ReceiptError("RECEIPT_SEAL_MALFORMED", "expected a COSE_Sign1 array of 4 items")
    protected, unprotected, payload, signature = value
    if not all(isinstance(x, bytes) for x in (protected, payload, signature)) or unprotected != {}:
        raise ReceiptError(
            "RECEIPT_SEAL_MALFORMED", "expected [protected bstr, {} , payload bstr, signature bstr] in the seal"
        )
    try:
        header = strict_cbor.decode(protected, max_bytes=MAX_SEAL_BYTES)
    except strict_cbor.CborError as err:
        raise ReceiptError(
            "RECEIPT_SEAL_MALFORMED", f"protected header is not CBOR this verifier accepts: {err.reason} ({err.code})"
        ) from None
    if not isinstance(header, dict) or set(header) != {1, 3} or header[3] != CONTENT_TYPE:
        raise ReceiptError(
            "RECEIPT_SEAL_MALFORMED",
            f"expected protected header {{1: alg, 3: {CONTENT_TYPE!r}}}, found {describe_value(header)}",
        )
    alg = header[1]
    if type(alg) is not int or alg not in (ALG_EDDSA, ALG_ES256):
        raise ReceiptError("RECEIPT_ALG", f"expected alg -8 (EdDSA) or -7 (ES256), found {describe_value(alg)}")
    return Seal(protected=protected, alg=alg, payload=payload, signature=signature)


def verify_seal(seal: Seal, key: ReceiptPublicKey) -> None:
    """Check the seal's signature under ``key``; raise :class:`ReceiptError` if it does not verify."""
    expected_alg = alg_for_key(key)
    if seal.alg != expected_alg:
        raise ReceiptError("RECEIPT_ALG", f"expected alg {expected_alg} for the attested key, found {seal.alg}")
    message = sig_structure(seal.protected, seal.payload)
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(seal.signature, message)
        else:
            if len(seal.signature) != 64:
                raise ReceiptError(
                    "RECEIPT_SIGNATURE", f"expected a 64-byte ES256 signature, found {len(seal.signature)}"
                )
            r = int.from_bytes(seal.signature[:32], "big")
            s = int.from_bytes(seal.signature[32:], "big")
            key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as err:
        raise ReceiptError(
            "RECEIPT_SIGNATURE", "the seal's signature does not verify under the attested receipt key"
        ) from err
