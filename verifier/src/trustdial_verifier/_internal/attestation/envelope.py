"""The attestation document's envelope: a COSE_Sign1 (tag 18 optional) as the Nitro Security Module emits it,
ES384 only. The NSM's header rules live here; decoding, Sig_structure and the signature check are
:mod:`trustdial_verifier._internal.cose_sign1`'s, whose ``COSE_*`` codes are reported as ``COSE_SHAPE`` and whose
``CBOR_*`` codes pass through."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from trustdial_verifier._internal import cose_sign1, strict_cbor
from trustdial_verifier._internal.attestation.errors import DocumentFormatError, SignatureError
from trustdial_verifier._internal.cose_sign1 import ALG_ES384, HEADER_ALG, CoseError, CoseSign1, TagRule
from trustdial_verifier.errors import describe_value

ES384_SIGNATURE_BYTES = cose_sign1.ECDSA_ALGORITHMS[ALG_ES384].signature_bytes


def parse_cose_sign1(data: bytes) -> CoseSign1:
    """Decode and shape-check an NSM COSE_Sign1: protected header exactly ``{1: -35}``, unprotected header empty,
    a 96-byte signature."""
    try:
        message = cose_sign1.decode_cose_sign1(data, tag=TagRule.OPTIONAL)
    except CoseError as err:
        raise _format_error(err) from None
    _check_protected_header(message.protected)
    if message.unprotected:
        raise DocumentFormatError(
            "COSE_SHAPE", f"expected an empty unprotected header, found {len(message.unprotected)} entries"
        )
    if len(message.signature) != ES384_SIGNATURE_BYTES:
        raise DocumentFormatError(
            "COSE_SHAPE",
            f"expected a {ES384_SIGNATURE_BYTES}-byte ES384 signature (r||s), found {len(message.signature)}",
        )
    return message


def _check_protected_header(protected: bytes) -> None:
    try:
        header = cose_sign1.decode_protected_header(protected)
    except CoseError as err:
        raise _format_error(err) from None
    if header != {HEADER_ALG: ALG_ES384}:
        raise DocumentFormatError(
            "COSE_ALGORITHM",
            f"expected protected header {{1: -35}} (alg ES384 only), found a map of {len(header)} entries"
            + (f" with alg {describe_value(header.get(HEADER_ALG))}" if HEADER_ALG in header else " without alg"),
        )


def verify_es384(message: CoseSign1, public_key: ec.EllipticCurvePublicKey) -> None:
    """Check the raw r||s ES384 signature with a P-384 key; raise ``COSE_SIGNATURE`` if it fails."""
    try:
        cose_sign1.verify_signature(message, ALG_ES384, public_key)
    except CoseError as err:
        reason = (
            err.reason
            if err.code == "COSE_KEY"
            else "expected an ES384 signature by the leaf certificate's key over the payload as received"
        )
        raise SignatureError("COSE_SIGNATURE", reason) from None


def decode_cbor(data: bytes) -> strict_cbor.CborValue:
    """Strictly decode ``data`` (no tags); CBOR problems are reported as :class:`DocumentFormatError` with the
    reader's code."""
    try:
        return strict_cbor.decode(data)
    except strict_cbor.CborError as err:
        raise DocumentFormatError(err.code, err.reason) from None


def _format_error(err: CoseError) -> DocumentFormatError:
    return DocumentFormatError("COSE_SHAPE" if err.code.startswith("COSE_") else err.code, err.reason)
