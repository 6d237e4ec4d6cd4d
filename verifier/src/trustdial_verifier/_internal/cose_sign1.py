"""COSE_Sign1 (RFC 9052 §4.2): the one envelope, Sig_structure and signature code for every signed format here.

The envelope is ``[protected: bstr, unprotected: map, payload: bstr, signature: bstr]``, CBOR tag 18 allowed,
required or refused as the format says (:class:`TagRule`). The signature is checked over ``Sig_structure1``
(``["Signature1", protected, external_aad, payload]``, §4.4) built from the protected header and payload byte
strings exactly as received, never re-encoded. Algorithms (RFC 9053 §2): EdDSA (-8, Ed25519), ES256 (-7, P-256),
ES384 (-35, P-384), ES512 (-36, P-521); ECDSA signatures are raw ``r || s`` of fixed width.

Who uses it, each with its own header rules on top: the Nitro attestation document (ES384, tag optional),
receipt seals (EdDSA or ES256, untagged), signed manifests (ES384, tag required), the EIF signature section
(ES256/384/512, tag optional); and on the signing side the simulated NSM, the enclave's receipt key, the
manifest signer and the EIF signer.

This is a format layer: it raises :class:`CoseError` (codes ``COSE_*`` and the CBOR reader's ``CBOR_*``), and each
kind of evidence maps those to its own codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from trustdial_verifier._internal import strict_cbor
from trustdial_verifier.errors import VerificationError

COSE_SIGN1_TAG = strict_cbor.TAG_COSE_SIGN1
COSE_SIGN1_TAG_HEAD = b"\xd2"  # tag 18, one-byte head
HEADER_ALG = 1
HEADER_CRIT = 2
HEADER_CONTENT_TYPE = 3
HEADER_KID = 4
SIGNATURE1_CONTEXT = "Signature1"

ALG_EDDSA = -8
ALG_ES256 = -7
ALG_ES384 = -35
ALG_ES512 = -36


@dataclass(frozen=True)
class EcdsaAlgorithm:
    """An ECDSA COSE algorithm: its hash, its curve and the width of each of r and s."""

    hash: type[hashes.HashAlgorithm]
    curve: type[ec.EllipticCurve]
    coordinate_bytes: int

    @property
    def signature_bytes(self) -> int:
        return 2 * self.coordinate_bytes


ECDSA_ALGORITHMS: Mapping[int, EcdsaAlgorithm] = {
    ALG_ES256: EcdsaAlgorithm(hashes.SHA256, ec.SECP256R1, 32),
    ALG_ES384: EcdsaAlgorithm(hashes.SHA384, ec.SECP384R1, 48),
    ALG_ES512: EcdsaAlgorithm(hashes.SHA512, ec.SECP521R1, 66),
}
EDDSA_SIGNATURE_BYTES = 64
ALGORITHM_NAMES: Mapping[int, str] = {ALG_EDDSA: "EdDSA", ALG_ES256: "ES256", ALG_ES384: "ES384", ALG_ES512: "ES512"}

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
Header = dict[strict_cbor.CborKey, strict_cbor.CborValue]


class CoseError(VerificationError):
    """A COSE_Sign1 is malformed or its signature does not verify. Codes: ``COSE_TAG`` (tag 18 where the format
    refuses it, missing where it requires it, or another tag), ``COSE_SHAPE`` (not an array of 4),
    ``COSE_HEADER`` (a header of the wrong type, or a protected header that is not a map), ``COSE_HEADER_LABEL``
    (a protected header label that is neither an integer nor text),
    ``COSE_PAYLOAD`` (payload not an attached byte string), ``COSE_SIGNATURE_TYPE`` (signature not a byte string),
    ``COSE_ALGORITHM`` (an algorithm not listed above), ``COSE_KEY`` (key does not fit the algorithm),
    ``COSE_SIGNATURE_LENGTH``, ``COSE_SIGNATURE`` (does not verify); and the CBOR reader's ``CBOR_*`` codes."""


class TagRule(Enum):
    """What a format says about CBOR tag 18 around its COSE_Sign1."""

    OPTIONAL = "optional"
    REQUIRED = "required"
    FORBIDDEN = "forbidden"


@dataclass(frozen=True)
class CoseSign1:
    """The four parts of a COSE_Sign1 message, byte strings as received."""

    protected: bytes
    unprotected: Header
    payload: bytes
    signature: bytes
    tagged: bool = False


def decode_cose_sign1(
    data: bytes,
    *,
    tag: TagRule,
    max_bytes: int = strict_cbor.MAX_BYTES,
    max_items: int = strict_cbor.MAX_ITEMS,
) -> CoseSign1:
    """Strictly decode a COSE_Sign1 and check the types of its four parts (nothing about their contents)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CoseError("COSE_SHAPE", f"expected a COSE_Sign1 as bytes, found {type(data).__name__}")
    head = bytes(data[:1])
    if head and head[0] >> 5 == strict_cbor.MAJOR_TAG and head != COSE_SIGN1_TAG_HEAD:
        raise CoseError("COSE_TAG", f"expected no tag or tag {COSE_SIGN1_TAG} (COSE_Sign1), found another tag")
    allowed = strict_cbor.NO_TAGS if tag is TagRule.FORBIDDEN else frozenset({COSE_SIGN1_TAG})
    value = _decode(bytes(data), tags=allowed, max_bytes=max_bytes, max_items=max_items)
    tagged = isinstance(value, strict_cbor.CborTag)
    if isinstance(value, strict_cbor.CborTag):
        value = value.value
    elif tag is TagRule.REQUIRED:
        raise CoseError("COSE_TAG", f"expected a COSE_Sign1 in CBOR tag {COSE_SIGN1_TAG}, found no tag")
    if not isinstance(value, list) or len(value) != 4:
        found = f"array of {len(value)}" if isinstance(value, list) else type(value).__name__
        raise CoseError("COSE_SHAPE", f"expected a COSE_Sign1 array of 4 elements, found {found}")
    protected, unprotected, payload, signature = value
    if not isinstance(protected, bytes):
        raise CoseError("COSE_HEADER", f"expected protected header as bstr, found {type(protected).__name__}")
    if not isinstance(unprotected, dict):
        raise CoseError("COSE_HEADER", f"expected unprotected header as map, found {type(unprotected).__name__}")
    if not isinstance(payload, bytes):
        raise CoseError("COSE_PAYLOAD", f"expected an attached payload as bstr, found {type(payload).__name__}")
    if not isinstance(signature, bytes):
        raise CoseError("COSE_SIGNATURE_TYPE", f"expected signature as bstr, found {type(signature).__name__}")
    return CoseSign1(protected, unprotected, payload, signature, tagged)


def decode_protected_header(protected: bytes, *, max_bytes: int = strict_cbor.MAX_BYTES) -> Header:
    """The protected header map, strictly decoded; a zero-length byte string is the empty map (RFC 9052 §3).
    Labels must be integers or text (§3)."""
    if not protected:
        return {}
    header = _decode(protected, tags=strict_cbor.NO_TAGS, max_bytes=max_bytes, max_items=strict_cbor.MAX_ITEMS)
    if not isinstance(header, dict):
        raise CoseError("COSE_HEADER", f"expected the protected header to encode a map, found {type(header).__name__}")
    if any(not isinstance(label, int | str) or isinstance(label, bool) for label in header):
        raise CoseError("COSE_HEADER_LABEL", "expected integer or text header labels, found a label of another type")
    return header


def sig_structure(protected: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    """The to-be-signed bytes: ``["Signature1", protected, external_aad, payload]`` (RFC 9052 §4.4)."""
    return cbor2.dumps([SIGNATURE1_CONTEXT, protected, external_aad, payload])


def verify_signature(message: CoseSign1, alg: int, key: PublicKey) -> None:
    """Check ``message``'s signature as algorithm ``alg`` under ``key``; raise :class:`CoseError` if it fails."""
    to_be_signed = sig_structure(message.protected, message.payload)
    name = ALGORITHM_NAMES.get(alg, str(alg))
    if alg == ALG_EDDSA:
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise CoseError("COSE_KEY", f"expected an Ed25519 key for EdDSA, found {type(key).__name__}")
        if len(message.signature) != EDDSA_SIGNATURE_BYTES:
            raise CoseError(
                "COSE_SIGNATURE_LENGTH",
                f"expected a {EDDSA_SIGNATURE_BYTES}-byte EdDSA signature, found {len(message.signature)}",
            )
        try:
            key.verify(message.signature, to_be_signed)
        except InvalidSignature:
            raise CoseError("COSE_SIGNATURE", "expected an EdDSA signature over the message as received") from None
        return
    ecdsa = ECDSA_ALGORITHMS.get(alg)
    if ecdsa is None:
        raise CoseError("COSE_ALGORITHM", f"expected one of {sorted(ALGORITHM_NAMES)}, found algorithm {name}")
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ecdsa.curve):
        found = key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else type(key).__name__
        raise CoseError("COSE_KEY", f"expected a {ecdsa.curve.name} key for {name}, found {found}")
    if len(message.signature) != ecdsa.signature_bytes:
        raise CoseError(
            "COSE_SIGNATURE_LENGTH",
            f"expected a {ecdsa.signature_bytes}-byte {name} signature (r||s), found {len(message.signature)}",
        )
    width = ecdsa.coordinate_bytes
    der = encode_dss_signature(
        int.from_bytes(message.signature[:width], "big"), int.from_bytes(message.signature[width:], "big")
    )
    try:
        key.verify(der, to_be_signed, ec.ECDSA(ecdsa.hash()))
    except InvalidSignature:
        raise CoseError("COSE_SIGNATURE", f"expected a {name} signature over the message as received") from None


def raw_ecdsa_signature(der: bytes, alg: int) -> bytes:
    """A DER ECDSA signature (what cryptography and KMS return) as COSE's fixed-width ``r || s`` for ``alg``."""
    width = ECDSA_ALGORITHMS[alg].coordinate_bytes
    r, s = decode_dss_signature(der)
    return r.to_bytes(width, "big") + s.to_bytes(width, "big")


def encode_header(header: Mapping[int, object], *, canonical: bool = False) -> bytes:
    """A header map as CBOR (the protected header's bytes, before it is wrapped as a bstr)."""
    return cbor2.dumps(dict(header), canonical=canonical)


def encode_cose_sign1(
    protected: bytes,
    payload: bytes,
    signature: bytes,
    *,
    unprotected: Mapping[int, object] | None = None,
    tagged: bool,
) -> bytes:
    """The COSE_Sign1 bytes, tag 18 around them when ``tagged``."""
    message = [protected, dict(unprotected or {}), payload, signature]
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, message) if tagged else message)


def _decode(data: bytes, *, tags: frozenset[int], max_bytes: int, max_items: int) -> strict_cbor.CborValue:
    try:
        return strict_cbor.decode(data, tags=tags, max_bytes=max_bytes, max_items=max_items)
    except strict_cbor.CborError as err:
        raise CoseError(err.code, err.reason) from None
