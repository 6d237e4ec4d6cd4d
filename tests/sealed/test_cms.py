"""The CiphertextForRecipient parser against CMS messages made by independent producers: the ``openssl cms`` command
(RSAES-OAEP-SHA-256; AES-256-CBC as DER and as streamed BER, the shape KMS sends; AES-256-GCM AuthEnvelopedData) and
``cryptography``'s PKCS#7 envelope builder (RSA PKCS#1 v1.5, which must be refused, though its structure parses)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import padding as symmetric_padding
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs7
from hypothesis import given, settings
from hypothesis import strategies as st
from kms_loopback import LoopbackCa, openssl_cms_encrypt

from enclave_app.sealed.cms import decrypt_recipient_message, parse_recipient_message
from enclave_app.sealed.errors import SealedModelError

CA = LoopbackCa.create()
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CERT = CA.issue(KEY.public_key(), "enclave recipient")
DATA_KEY = bytes(range(32))


def openssl(cipher: str, *, stream: bool, extra: list[str] | None = None, plaintext: bytes = DATA_KEY) -> bytes:
    if extra is None:
        return openssl_cms_encrypt(CERT, plaintext, cipher, stream=stream)
    return _openssl_raw(plaintext, [cipher, *extra], stream)


def _openssl_raw(plaintext: bytes, options: list[str], stream: bool) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        cert, data, out = Path(work) / "c.pem", Path(work) / "d", Path(work) / "o.der"
        cert.write_bytes(CERT.public_bytes(serialization.Encoding.PEM))
        data.write_bytes(plaintext)
        command = ["openssl", "cms", "-encrypt", "-binary", "-in", str(data), "-recip", str(cert), *options,
                   "-outform", "DER", "-out", str(out)]  # fmt: skip
        if stream:
            command.insert(3, "-stream")
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        return out.read_bytes()


@pytest.mark.parametrize("stream", [False, True], ids=["der", "ber-streamed"])
def test_openssl_aes256_cbc_oaep_sha256_decrypts(stream: bool) -> None:
    message = openssl("-aes256", stream=stream)
    assert (message[1] == 0x80) is stream  # the streamed form really is indefinite-length BER
    envelope = parse_recipient_message(message)
    assert envelope.content_cipher == "AES-256-CBC" and len(envelope.iv) == 16
    assert decrypt_recipient_message(message, KEY) == DATA_KEY


def test_openssl_aes256_gcm_auth_enveloped_data_decrypts() -> None:
    message = openssl("-aes-256-gcm", stream=False)
    assert parse_recipient_message(message).content_cipher == "AES-256-GCM"
    assert decrypt_recipient_message(message, KEY) == DATA_KEY


def test_issuer_and_serial_recipient_identifier_decrypts() -> None:
    message = _openssl_raw(
        DATA_KEY, ["-aes256", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"], stream=False
    )  # fmt: skip  (no -keyid: version 0 with issuerAndSerialNumber)
    assert decrypt_recipient_message(message, KEY) == DATA_KEY


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 1000, 40000])
def test_content_of_any_length_round_trips_through_openssl(size: int) -> None:
    plaintext = os.urandom(size)
    assert decrypt_recipient_message(openssl("-aes256", stream=True, plaintext=plaintext), KEY) == plaintext


def test_oaep_with_sha1_defaults_is_refused() -> None:
    message = _openssl_raw(DATA_KEY, ["-aes256", "-keyid", "-keyopt", "rsa_padding_mode:oaep"], stream=False)
    with pytest.raises(SealedModelError) as caught:
        decrypt_recipient_message(message, KEY)
    assert caught.value.code == "CMS_UNSUPPORTED"


def test_oaep_with_a_label_is_refused() -> None:
    options = ["-aes256", "-keyid", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"]
    message = _openssl_raw(DATA_KEY, [*options, "-keyopt", "rsa_oaep_label:0102"], stream=False)
    with pytest.raises(SealedModelError) as caught:
        decrypt_recipient_message(message, KEY)
    assert caught.value.code == "CMS_UNSUPPORTED"


@pytest.mark.parametrize("cipher", ["-aes128", "-aes192", "-des3", "-aes-128-gcm"])
def test_other_content_ciphers_are_refused(cipher: str) -> None:
    with pytest.raises(SealedModelError) as caught:
        decrypt_recipient_message(openssl(cipher, stream=False), KEY)
    assert caught.value.code == "CMS_UNSUPPORTED"


def test_pkcs1v15_key_transport_from_cryptography_is_refused_though_its_structure_parses() -> None:
    message = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(DATA_KEY)
        .add_recipient(CERT)
        .set_content_encryption_algorithm(algorithms.AES256)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    with pytest.raises(SealedModelError) as caught:
        decrypt_recipient_message(message, KEY)
    assert caught.value.code == "CMS_UNSUPPORTED"
    # The same bytes, taken apart by hand below the key-transport check, hold what cryptography put there:
    from enclave_app.sealed import ber, cms

    body = ber.parse(message).children[1].children[0].children
    _content_type, algorithm, encrypted = body[2].children
    iv = ber.octets(algorithm.children[1])
    encrypted_key = ber.octets(body[1].children[0].children[3])
    content_key = KEY.decrypt(encrypted_key, padding.PKCS1v15())
    padded = Cipher(algorithms.AES(content_key), modes.CBC(iv)).decryptor().update(ber.octets(encrypted))
    unpadder = symmetric_padding.PKCS7(128).unpadder()
    assert unpadder.update(padded) + unpadder.finalize() == DATA_KEY
    assert algorithm.children[0].value == cms.OID_AES256_CBC
    # and cryptography's own decryptor agrees on the plaintext (the producer reads its own output)
    assert pkcs7.pkcs7_decrypt_der(message, CERT, KEY, []) == DATA_KEY


def test_a_message_for_another_key_is_refused() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(SealedModelError) as caught:
        decrypt_recipient_message(openssl("-aes256", stream=True), other)
    assert caught.value.code == "CMS_RECIPIENT_KEY"


def test_tampered_encrypted_content_is_refused() -> None:
    message = bytearray(openssl("-aes256", stream=False))
    message[-1] ^= 0x01  # last byte of the CBC ciphertext: the padding no longer checks
    with pytest.raises(SealedModelError) as caught:
        decrypt_recipient_message(bytes(message), KEY)
    assert caught.value.code == "CMS_CONTENT"


def test_tampered_gcm_tag_is_refused() -> None:
    message = bytearray(openssl("-aes-256-gcm", stream=False))
    message[-1] ^= 0x80  # the mac is the last element
    with pytest.raises(SealedModelError) as caught:
        decrypt_recipient_message(bytes(message), KEY)
    assert caught.value.code == "CMS_CONTENT"


def test_two_recipients_are_refused() -> None:
    import tempfile

    second = CA.issue(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(), "second")
    with tempfile.TemporaryDirectory() as work:
        paths = [Path(work) / "a.pem", Path(work) / "b.pem"]
        for path, cert in zip(paths, (CERT, second), strict=True):
            path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (Path(work) / "d").write_bytes(DATA_KEY)
        oaep = ["-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"]
        subprocess.run(["openssl", "cms", "-encrypt", "-binary", "-in", str(Path(work) / "d"), "-aes256",
                        "-recip", str(paths[0]), *oaep, "-recip", str(paths[1]), *oaep,
                        "-outform", "DER", "-out", str(Path(work) / "o")], check=True, capture_output=True)  # fmt: skip
        message = (Path(work) / "o").read_bytes()
    with pytest.raises(SealedModelError) as caught:
        decrypt_recipient_message(message, KEY)
    assert caught.value.code == "CMS_UNSUPPORTED"


@pytest.mark.parametrize(
    "mutate",
    [lambda m: m + b"\x00", lambda m: m[:-3], lambda m: m[:100], lambda m: b"\x30\x80" + m[2:40], lambda m: b""],
    ids=["trailing", "truncated-end", "truncated-middle", "no-end-of-contents", "empty"],
)
def test_malformed_framing_is_refused(mutate: object) -> None:
    message = openssl("-aes256", stream=True)
    with pytest.raises(SealedModelError) as caught:
        decrypt_recipient_message(mutate(message), KEY)  # type: ignore[operator]
    assert caught.value.code == "CMS_MALFORMED"


MESSAGE = openssl_cms_encrypt(CERT, DATA_KEY, "-aes256", stream=True)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(MESSAGE) - 1), st.integers(min_value=1, max_value=255))
def test_any_single_byte_change_is_a_typed_refusal_or_a_plaintext(position: int, flip: int) -> None:
    """Never an untyped failure. (AES-CBC content has no integrity: a changed IV or ciphertext block can yield a
    different 32-byte key without an error; the sealed files' AES-GCM tags are what refuse such a key.)"""
    mutated = bytearray(MESSAGE)
    mutated[position] ^= flip
    try:
        decrypt_recipient_message(bytes(mutated), KEY)
    except SealedModelError as err:
        assert err.code.startswith("CMS_")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_are_a_typed_refusal(data: bytes) -> None:
    with pytest.raises(SealedModelError):
        decrypt_recipient_message(data, KEY)


@pytest.mark.parametrize("nested", [b"\x30\x80" * 5000, b"\x30\x82\xff\xff" * 3000, b"\x24\x80" * 5000])
def test_deep_nesting_is_a_typed_refusal_not_a_recursion_error(nested: bytes) -> None:
    with pytest.raises(SealedModelError) as caught:
        decrypt_recipient_message(nested[: 60 * 1024], KEY)
    assert caught.value.code == "CMS_MALFORMED"
