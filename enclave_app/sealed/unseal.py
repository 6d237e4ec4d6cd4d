"""Open a sealed model directory in memory: parse the header, unwrap the data key (KMS with an attested Recipient,
or a development RSA key), decrypt every file with its AAD, and check every plaintext SHA-256. Plaintext only ever
lives in process memory; any failure raises :class:`SealedModelError` before anything is returned."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from enclave_app.sealed.cms import decrypt_recipient_message
from enclave_app.sealed.credentials import AwsCredentials
from enclave_app.sealed.errors import SealedModelError
from enclave_app.sealed.header import (
    DATA_KEY_BYTES,
    HEADER_NAME,
    MAX_HEADER_BYTES,
    TAG_BYTES,
    KeyScheme,
    SealedHeader,
    WrappedKey,
    blob_name,
    file_aad,
    header_digest,
    parse_header,
)
from enclave_app.sealed.key_wrap import OAEP_SHA256, rsa_key_id
from enclave_app.sealed.kms_client import KmsEndpoint, decrypt_for_recipient

if TYPE_CHECKING:
    from enclave_app.nsm.interface import Nsm

#: user_data of the attestation document sent to KMS (the public_key field carries the recipient key)
RECIPIENT_USER_DATA = b"trustdial/kms-recipient/v1"
RECIPIENT_KEY_BITS = 2048
CHUNK = 1 << 20


class DataKeyUnwrapper(Protocol):
    def unwrap(self, key: WrappedKey) -> bytes:
        """The 32-byte data key, or :class:`SealedModelError`."""
        ...


@dataclass(frozen=True)
class UnsealedModel:
    header: SealedHeader
    files: Mapping[str, bytes] = field(repr=False)

    @property
    def model_bytes(self) -> bytes:
        return self.files[self.header.model]

    @property
    def model_sha256(self) -> bytes:
        return self.header.model_sha256


@dataclass
class KmsRecipientUnwrapper:
    """KMS ``Decrypt`` with ``Recipient``: a fresh RSA-2048 key per call, its SPKI bound into an NSM attestation."""

    nsm: Nsm
    endpoint: KmsEndpoint
    credentials: Callable[[], AwsCredentials]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def unwrap(self, key: WrappedKey) -> bytes:
        if key.scheme != KeyScheme.AWS_KMS:
            raise SealedModelError("SEALED_KEY_SCHEME", f"expected a KMS-sealed model, found scheme {key.scheme}")
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=RECIPIENT_KEY_BITS)
        spki = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        document = self.nsm.attest(public_key=spki, user_data=RECIPIENT_USER_DATA)
        credentials = self.credentials()
        credentials.require_fresh(self.clock())
        message = decrypt_for_recipient(
            self.endpoint,
            credentials,
            ciphertext_blob=key.encrypted_data_key,
            key_id=key.key_id,
            encryption_context=key.encryption_context,
            attestation_document=document,
            clock=self.clock,
        )
        data_key = decrypt_recipient_message(message, private_key)
        if len(data_key) != DATA_KEY_BYTES:
            raise SealedModelError("SEALED_DATA_KEY", f"expected a 32-byte data key from KMS, found {len(data_key)}")
        return data_key


@dataclass(frozen=True)
class RsaFileUnwrapper:
    """Development only: the private half of a ``file:PEM`` sealing key, held by whoever runs the server."""

    private_key: rsa.RSAPrivateKey

    def unwrap(self, key: WrappedKey) -> bytes:
        if key.scheme != KeyScheme.RSA_OAEP_SHA256:
            raise SealedModelError("SEALED_KEY_SCHEME", f"expected a file:PEM-sealed model, found scheme {key.scheme}")
        if key.key_id != rsa_key_id(self.private_key.public_key()):
            raise SealedModelError("SEALED_KEY_MISMATCH", f"the model was sealed to {key.key_id}, not to this key")
        try:
            data_key = self.private_key.decrypt(key.encrypted_data_key, OAEP_SHA256)
        except ValueError as err:
            raise SealedModelError("SEALED_DATA_KEY", "the data key does not unwrap with this RSA key") from err
        if len(data_key) != DATA_KEY_BYTES:
            raise SealedModelError("SEALED_DATA_KEY", f"expected a 32-byte data key, found {len(data_key)} bytes")
        return data_key


def _read_header(directory: Path) -> bytes:
    path = directory / HEADER_NAME
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_HEADER_BYTES + 1)
    except OSError as err:
        raise SealedModelError("SEALED_FILE_MISSING", f"cannot read {path}: {err.strerror}") from err
    return raw


def _decrypt_blob(path: Path, key: bytes, nonce: bytes, aad: bytes, size: int) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).decryptor()
    decryptor.authenticate_additional_data(aad)
    plaintext = bytearray()
    with path.open("rb") as handle:
        remaining = size
        while remaining:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                raise SealedModelError("SEALED_FILE_SIZE", f"{path} is shorter than its header says")
            plaintext += decryptor.update(chunk)
            remaining -= len(chunk)
        tag = handle.read(TAG_BYTES + 1)
    if len(tag) != TAG_BYTES:
        raise SealedModelError("SEALED_FILE_SIZE", f"{path} does not end in exactly one {TAG_BYTES}-byte tag")
    try:
        decryptor.finalize_with_tag(tag)
    except InvalidTag as err:
        raise SealedModelError(
            "SEALED_TAMPERED", f"{path} fails its AES-256-GCM tag: the file, its nonce or the header was altered"
        ) from err
    return bytes(plaintext)


def unseal(directory: Path, unwrapper: DataKeyUnwrapper) -> UnsealedModel:
    """Every file of the sealed model at ``directory``, decrypted and digest-checked, in memory."""
    raw = _read_header(directory)
    header = parse_header(raw)
    digest = header_digest(raw)
    blobs = []
    for index, entry in enumerate(header.files):
        path = directory / blob_name(index)
        try:
            stored = path.stat().st_size
        except OSError as err:
            raise SealedModelError("SEALED_FILE_MISSING", f"cannot read {path} ({entry.name}): {err.strerror}") from err
        if stored != entry.size + TAG_BYTES:
            raise SealedModelError(
                "SEALED_FILE_SIZE", f"{path} holds {stored} bytes; {entry.name} needs {entry.size} + {TAG_BYTES}"
            )
        blobs.append(path)
    data_key = unwrapper.unwrap(header.key)
    files: dict[str, bytes] = {}
    for index, (entry, path) in enumerate(zip(header.files, blobs, strict=True)):
        plaintext = _decrypt_blob(path, data_key, entry.nonce, file_aad(digest, index, entry.name), entry.size)
        if hashlib.sha256(plaintext).digest() != entry.sha256:
            raise SealedModelError(
                "SEALED_DIGEST_MISMATCH",
                f"{entry.name} decrypts to SHA-256 {hashlib.sha256(plaintext).hexdigest()}, the header says "
                f"{entry.sha256.hex()}",
            )
        files[entry.name] = plaintext
    return UnsealedModel(header, files)
