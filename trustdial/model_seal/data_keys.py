"""Where a sealed model's data key comes from: KMS ``GenerateDataKey`` (``kms:ALIAS_OR_ARN``) or, for offline and
development use, a fresh local key wrapped with RSA-OAEP-SHA-256 to a public key (``file:PEM``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from enclave_app.sealed.errors import SealedModelError
from enclave_app.sealed.header import DATA_KEY_BYTES, KeyScheme, WrappedKey
from enclave_app.sealed.key_wrap import OAEP_SHA256, rsa_key_id


class DataKeySource(Protocol):
    def new_data_key(self, context: Mapping[str, str]) -> tuple[bytes, WrappedKey]:
        """A fresh 32-byte data key and its wrapped form."""
        ...


@dataclass(frozen=True)
class RsaFileDataKeys:
    public_key: rsa.RSAPublicKey
    random: Callable[[int], bytes] = os.urandom

    @classmethod
    def from_pem(cls, path: Path) -> RsaFileDataKeys:
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except OSError as err:
            raise SealedModelError("SEAL_KEY", f"cannot read the public key {path}: {err.strerror}") from err
        except ValueError as err:
            raise SealedModelError("SEAL_KEY", f"{path} is not a PEM public key: {err}") from err
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
            raise SealedModelError("SEAL_KEY", f"{path}: expected an RSA public key of at least 2048 bits")
        return cls(key)

    def new_data_key(self, context: Mapping[str, str]) -> tuple[bytes, WrappedKey]:
        data_key = self.random(DATA_KEY_BYTES)
        wrapped = self.public_key.encrypt(data_key, OAEP_SHA256)
        return data_key, WrappedKey(KeyScheme.RSA_OAEP_SHA256, rsa_key_id(self.public_key), wrapped, {})


@dataclass(frozen=True)
class KmsDataKeys:
    """``GenerateDataKey(KeySpec=AES_256)`` with the encryption context recorded in the header."""

    key_id: str
    client: Any  # a boto3 KMS client

    def new_data_key(self, context: Mapping[str, str]) -> tuple[bytes, WrappedKey]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.generate_data_key(
                KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=dict(context)
            )
        except ClientError as err:
            error = err.response.get("Error", {})
            raise SealedModelError(
                "SEAL_KMS_ERROR", f"KMS GenerateDataKey refused: {error.get('Code')}: {error.get('Message')}"
            ) from err
        except BotoCoreError as err:
            raise SealedModelError("SEAL_KMS_ERROR", f"KMS GenerateDataKey failed: {err}") from err
        plaintext, blob, key_arn = answer.get("Plaintext"), answer.get("CiphertextBlob"), answer.get("KeyId")
        if not isinstance(plaintext, bytes) or len(plaintext) != DATA_KEY_BYTES or not isinstance(blob, bytes):
            raise SealedModelError("SEAL_KMS_ERROR", "KMS GenerateDataKey answered without a 32-byte data key")
        return plaintext, WrappedKey(KeyScheme.AWS_KMS, str(key_arn or self.key_id), blob, dict(context))


def data_keys_from_spec(spec: str, *, kms_client: Callable[[], Any]) -> DataKeySource:
    """``kms:ALIAS_OR_ARN`` or ``file:PUBLIC.pem``."""
    scheme, sep, rest = spec.partition(":")
    if sep and rest and scheme == "kms":
        return KmsDataKeys(rest, kms_client())
    if sep and rest and scheme == "file":
        return RsaFileDataKeys.from_pem(Path(rest))
    raise SealedModelError("SEAL_KEY", f"expected --key kms:ALIAS_OR_ARN or file:PUBLIC.pem, found {spec!r}")
