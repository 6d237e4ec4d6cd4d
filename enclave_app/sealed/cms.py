"""``CiphertextForRecipient``: the CMS message (RFC 5652) in which AWS KMS returns a plaintext to a Nitro enclave.

Accepted shapes (docs/sealed-models.md §6), BER or DER:

* ``ContentInfo{ envelopedData, EnvelopedData }`` with exactly one KeyTransRecipientInfo (rid issuerAndSerialNumber,
  version 0, or subjectKeyIdentifier, version 2) whose key encryption is RSAES-OAEP with SHA-256 and MGF1-SHA-256
  and the empty label (RFC 4055), and content encryption AES-256-CBC (RFC 3565) with PKCS#7 padding: what KMS sends;
* ``ContentInfo{ authEnvelopedData, AuthEnvelopedData }`` (RFC 5083) with the same recipient and AES-256-GCM
  (RFC 5084), without authenticated attributes.

Anything else is refused with a stable code: ``CMS_MALFORMED`` (not this structure), ``CMS_UNSUPPORTED`` (a
structure or algorithm outside the list above), ``CMS_RECIPIENT_KEY`` (the RSA-OAEP unwrap failed: not encrypted to
our key, or tampered), ``CMS_CONTENT`` (the content does not decrypt: bad padding, failed tag, wrong key length).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from enclave_app.sealed import ber
from enclave_app.sealed.ber import Tlv
from enclave_app.sealed.errors import SealedModelError
from enclave_app.sealed.key_wrap import OAEP_SHA256

MAX_MESSAGE_BYTES = 64 * 1024
OID_ENVELOPED_DATA = ber.encode_oid("1.2.840.113549.1.7.3")
OID_AUTH_ENVELOPED_DATA = ber.encode_oid("1.2.840.113549.1.9.16.1.23")
OID_DATA = ber.encode_oid("1.2.840.113549.1.7.1")
OID_RSAES_OAEP = ber.encode_oid("1.2.840.113549.1.1.7")
OID_MGF1 = ber.encode_oid("1.2.840.113549.1.1.8")
OID_P_SPECIFIED = ber.encode_oid("1.2.840.113549.1.1.9")
OID_SHA256 = ber.encode_oid("2.16.840.1.101.3.4.2.1")
OID_AES256_CBC = ber.encode_oid("2.16.840.1.101.3.4.1.42")
OID_AES256_GCM = ber.encode_oid("2.16.840.1.101.3.4.1.46")
AES256_KEY_BYTES = 32


@dataclass(frozen=True)
class RecipientEnvelope:
    """The parts of a parsed message needed to decrypt it."""

    content_cipher: str  # "AES-256-CBC" or "AES-256-GCM"
    encrypted_key: bytes
    iv: bytes
    ciphertext: bytes
    tag: bytes  # empty for CBC


def _unsupported(reason: str) -> SealedModelError:
    return SealedModelError("CMS_UNSUPPORTED", reason)


def _malformed(reason: str) -> SealedModelError:
    return SealedModelError("CMS_MALFORMED", reason)


def _sequence(element: Tlv, what: str) -> tuple[Tlv, ...]:
    if not element.is_universal(ber.SEQUENCE) or not element.constructed:
        raise _malformed(f"expected {what} to be a SEQUENCE")
    return element.children


def _oid(element: Tlv, what: str) -> bytes:
    if not element.is_universal(ber.OID) or element.constructed:
        raise _malformed(f"expected {what} to be an OBJECT IDENTIFIER")
    return element.value


def _algorithm(element: Tlv, what: str) -> tuple[bytes, Tlv | None]:
    fields = _sequence(element, what)
    if not 1 <= len(fields) <= 2:
        raise _malformed(f"expected {what} to hold an algorithm and at most one parameter")
    return _oid(fields[0], what), fields[1] if len(fields) == 2 else None


def _require_sha256(element: Tlv, what: str) -> None:
    oid, parameters = _algorithm(element, what)
    if oid != OID_SHA256 or (parameters is not None and not parameters.is_universal(ber.NULL)):
        raise _unsupported(f"expected {what} SHA-256")


def _check_oaep_sha256(element: Tlv) -> None:
    """RSAES-OAEP-params (RFC 4055 §4.1): hash SHA-256, MGF1 with SHA-256, label empty (or absent)."""
    oid, parameters = _algorithm(element, "the key encryption algorithm")
    if oid != OID_RSAES_OAEP:
        raise _unsupported("expected RSAES-OAEP key transport (RSAES_OAEP_SHA_256); found another algorithm")
    if parameters is None:
        raise _unsupported("RSAES-OAEP without parameters means SHA-1; expected SHA-256")
    seen: set[int] = set()
    for field in _sequence(parameters, "the RSAES-OAEP parameters"):
        if field.tag_class != ber.CONTEXT or not field.constructed or len(field.children) != 1 or field.number in seen:
            raise _malformed("unexpected field in the RSAES-OAEP parameters")
        seen.add(field.number)
        inner = field.children[0]
        if field.number == 0:
            _require_sha256(inner, "the OAEP hash to be")
        elif field.number == 1:
            mgf, mgf_hash = _algorithm(inner, "the OAEP mask generation function")
            if mgf != OID_MGF1 or mgf_hash is None:
                raise _unsupported("expected MGF1 as the OAEP mask generation function")
            _require_sha256(mgf_hash, "the MGF1 hash to be")
        elif field.number == 2:
            source, label = _algorithm(inner, "the OAEP label source")
            if source != OID_P_SPECIFIED or label is None or ber.octets(label) != b"":
                raise _unsupported("expected the empty OAEP label")
        else:
            raise _malformed(f"unknown field [{field.number}] in the RSAES-OAEP parameters")
    if not {0, 1} <= seen:
        raise _unsupported("RSAES-OAEP parameters that default to SHA-1; expected SHA-256 and MGF1-SHA-256")


def _recipient_key(recipient_infos: Tlv) -> bytes:
    if not recipient_infos.is_universal(ber.SET) or not recipient_infos.constructed:
        raise _malformed("expected the recipient infos to be a SET")
    if len(recipient_infos.children) != 1:
        raise _unsupported(f"expected exactly one recipient, found {len(recipient_infos.children)}")
    info = recipient_infos.children[0]
    if not info.is_universal(ber.SEQUENCE):
        raise _unsupported("expected a key transport recipient (KeyTransRecipientInfo)")
    fields = info.children
    if len(fields) != 4:
        raise _malformed(f"expected 4 fields in KeyTransRecipientInfo, found {len(fields)}")
    version, rid, algorithm, encrypted_key = fields
    number = ber.small_integer(version)
    if not ((number == 0 and rid.is_universal(ber.SEQUENCE)) or (number == 2 and rid.is_context(0))):
        raise _malformed("KeyTransRecipientInfo version and recipient identifier disagree")
    _check_oaep_sha256(algorithm)
    if not encrypted_key.is_universal(ber.OCTET_STRING):
        raise _malformed("expected the encrypted key to be an OCTET STRING")
    return ber.octets(encrypted_key)


def _content(element: Tlv, authenticated: bool) -> tuple[str, bytes, bytes, int]:
    """(cipher, iv or nonce, ciphertext, GCM tag length) from an (Auth)EncryptedContentInfo."""
    fields = _sequence(element, "the encrypted content info")
    if len(fields) != 3:
        raise _malformed("expected content type, algorithm and encrypted content (content present)")
    content_type, algorithm, encrypted = fields
    if _oid(content_type, "the content type") != OID_DATA:
        raise _unsupported("expected the encrypted content to be id-data")
    if not encrypted.is_context(0):
        raise _malformed("expected the encrypted content as [0] IMPLICIT OCTET STRING")
    ciphertext = ber.octets(encrypted)
    oid, parameters = _algorithm(algorithm, "the content encryption algorithm")
    if oid == OID_AES256_CBC and not authenticated:
        if parameters is None or not parameters.is_universal(ber.OCTET_STRING):
            raise _malformed("expected an AES-CBC IV")
        iv = ber.octets(parameters)
        if len(iv) != 16:
            raise _malformed(f"expected a 16-byte AES-CBC IV, found {len(iv)} bytes")
        return "AES-256-CBC", iv, ciphertext, 0
    if oid == OID_AES256_GCM and authenticated:
        gcm = _sequence(parameters, "the GCM parameters") if parameters is not None else ()
        if not 1 <= len(gcm) <= 2 or not gcm[0].is_universal(ber.OCTET_STRING):
            raise _malformed("expected GCMParameters { nonce, ICVlen }")
        nonce = ber.octets(gcm[0])
        tag_length = ber.small_integer(gcm[1]) if len(gcm) == 2 else 12
        if len(nonce) != 12 or not 12 <= tag_length <= 16:
            raise _unsupported(f"expected a 12-byte GCM nonce and a 12-16 byte tag, found {len(nonce)}/{tag_length}")
        return "AES-256-GCM", nonce, ciphertext, tag_length
    raise _unsupported(
        "expected AES-256-CBC in EnvelopedData or AES-256-GCM in AuthEnvelopedData as the content encryption"
    )


def parse_recipient_message(message: bytes) -> RecipientEnvelope:
    """Parse ``CiphertextForRecipient`` without decrypting anything."""
    if len(message) > MAX_MESSAGE_BYTES:
        raise _malformed(f"expected at most {MAX_MESSAGE_BYTES} bytes, found {len(message)}")
    outer = _sequence(ber.parse(message), "the ContentInfo")
    if len(outer) != 2 or not outer[1].is_context(0) or len(outer[1].children) != 1:
        raise _malformed("expected ContentInfo { contentType, [0] content }")
    content_type = _oid(outer[0], "the content type")
    body = _sequence(outer[1].children[0], "the enveloped data")
    if content_type == OID_ENVELOPED_DATA:
        if len(body) not in (3, 4) or (len(body) == 4 and not body[3].is_context(1)):
            raise _unsupported("expected EnvelopedData without originator info")
        if ber.small_integer(body[0]) not in (0, 2):
            raise _unsupported("expected EnvelopedData version 0 or 2")
        cipher, iv, ciphertext, _ = _content(body[2], authenticated=False)
        return RecipientEnvelope(cipher, _recipient_key(body[1]), iv, ciphertext, b"")
    if content_type == OID_AUTH_ENVELOPED_DATA:
        if len(body) != 4 or ber.small_integer(body[0]) != 0:
            raise _unsupported("expected AuthEnvelopedData version 0 without originator info or attributes")
        cipher, nonce, ciphertext, tag_length = _content(body[2], authenticated=True)
        if not body[3].is_universal(ber.OCTET_STRING):
            raise _malformed("expected the AuthEnvelopedData mac as an OCTET STRING")
        tag = ber.octets(body[3])
        if len(tag) != tag_length:
            raise _malformed(f"expected a {tag_length}-byte GCM tag, found {len(tag)} bytes")
        return RecipientEnvelope(cipher, _recipient_key(body[1]), nonce, ciphertext, tag)
    raise _unsupported("expected envelopedData or authEnvelopedData content")


def decrypt_recipient_message(message: bytes, private_key: rsa.RSAPrivateKey) -> bytes:
    """The plaintext ``message`` carries for ``private_key``."""
    envelope = parse_recipient_message(message)
    try:
        key = private_key.decrypt(envelope.encrypted_key, OAEP_SHA256)
    except ValueError as err:
        raise SealedModelError(
            "CMS_RECIPIENT_KEY", "the content key does not unwrap with this enclave's key (RSA-OAEP failed)"
        ) from err
    if len(key) != AES256_KEY_BYTES:
        raise SealedModelError("CMS_CONTENT", f"expected a 32-byte AES-256 content key, found {len(key)} bytes")
    if envelope.content_cipher == "AES-256-GCM":
        return _gcm_decrypt(key, envelope)
    return _cbc_decrypt(key, envelope.iv, envelope.ciphertext)


def _gcm_decrypt(key: bytes, envelope: RecipientEnvelope) -> bytes:
    mode = modes.GCM(envelope.iv, envelope.tag, min_tag_length=len(envelope.tag))
    decryptor = Cipher(algorithms.AES(key), mode).decryptor()
    try:
        return decryptor.update(envelope.ciphertext) + decryptor.finalize()
    except InvalidTag as err:
        raise SealedModelError("CMS_CONTENT", "the AES-256-GCM content fails its tag (wrong key or tampered)") from err


def _cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    if not ciphertext or len(ciphertext) % 16:
        raise SealedModelError("CMS_CONTENT", f"AES-CBC content of {len(ciphertext)} bytes is not whole blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= 16 or padded[-pad:] != bytes([pad]) * pad:
        raise SealedModelError("CMS_CONTENT", "the AES-256-CBC content has invalid padding (wrong key or tampered)")
    return padded[:-pad]
