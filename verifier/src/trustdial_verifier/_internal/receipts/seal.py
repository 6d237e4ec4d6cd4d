"""The seal: an untagged COSE_Sign1 (RFC 9052 §4.2) whose payload is an encoded batch root.

Protected header ``{1: alg, 3: "application/trustdial-batch-root+cbor"}`` with alg EdDSA (-8,
Ed25519) or ES256 (-7, P-256, signature r||s of 64 bytes); unprotected header empty; payload
attached. The signing key's SubjectPublicKeyInfo (DER) is the ``public_key`` of the
attestation document the batch root names.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from trustdial_verifier._internal import cose_sign1
from trustdial_verifier._internal.cose_sign1 import (
    ALG_EDDSA,
    ALG_ES256,
    HEADER_ALG,
    HEADER_CONTENT_TYPE,
    CoseError,
    CoseSign1,
    TagRule,
)
from trustdial_verifier._internal.receipts.errors import ReceiptError
from trustdial_verifier.errors import describe_value

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
    return cose_sign1.encode_header({HEADER_ALG: alg, HEADER_CONTENT_TYPE: CONTENT_TYPE}, canonical=True)


def encode_seal(protected: bytes, payload: bytes, signature: bytes) -> bytes:
    """The seal's bytes: an untagged COSE_Sign1 with an empty unprotected header."""
    return cose_sign1.encode_cose_sign1(protected, payload, signature, tagged=False)


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
    try:  # a tagged seal is refused too: the seal is an untagged COSE_Sign1
        message = cose_sign1.decode_cose_sign1(raw, tag=TagRule.FORBIDDEN, max_bytes=MAX_SEAL_BYTES)
        header = cose_sign1.decode_protected_header(message.protected, max_bytes=MAX_SEAL_BYTES)
    except CoseError as err:
        raise ReceiptError(
            "RECEIPT_SEAL_MALFORMED", f"seal is not a COSE_Sign1 this verifier accepts: {err.reason} ({err.code})"
        ) from None
    if message.unprotected != {}:
        raise ReceiptError(
            "RECEIPT_SEAL_MALFORMED", "expected [protected bstr, {} , payload bstr, signature bstr] in the seal"
        )
    if set(header) != {HEADER_ALG, HEADER_CONTENT_TYPE} or header[HEADER_CONTENT_TYPE] != CONTENT_TYPE:
        raise ReceiptError(
            "RECEIPT_SEAL_MALFORMED",
            f"expected protected header {{1: alg, 3: {CONTENT_TYPE!r}}}, found {describe_value(header)}",
        )
    alg = header[HEADER_ALG]
    if type(alg) is not int or alg not in (ALG_EDDSA, ALG_ES256):
        raise ReceiptError("RECEIPT_ALG", f"expected alg -8 (EdDSA) or -7 (ES256), found {describe_value(alg)}")
    return Seal(protected=message.protected, alg=alg, payload=message.payload, signature=message.signature)


def verify_seal(seal: Seal, key: ReceiptPublicKey) -> None:
    """Check the seal's signature under ``key``; raise :class:`ReceiptError` if it does not verify."""
    expected_alg = alg_for_key(key)
    if seal.alg != expected_alg:
        raise ReceiptError("RECEIPT_ALG", f"expected alg {expected_alg} for the attested key, found {seal.alg}")
    message = CoseSign1(seal.protected, {}, seal.payload, seal.signature)
    try:
        cose_sign1.verify_signature(message, seal.alg, key)
    except CoseError as err:
        reason = (
            err.reason
            if err.code == "COSE_SIGNATURE_LENGTH"
            else "the seal's signature does not verify under the attested receipt key"
        )
        raise ReceiptError("RECEIPT_SIGNATURE", reason) from None
