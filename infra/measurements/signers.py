"""ECDSA P-384 signers for manifests: a local PEM private key, or an AWS KMS asymmetric key
(``ECC_NIST_P384``, ``SIGN_VERIFY``) asked to sign a SHA-384 digest with ``MessageType=DIGEST``.
Both return DER signatures over a given 48-byte digest."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from infra.measurements.errors import MeasurementsError

KMS_PREFIX = "kms:"


class ManifestSigner(Protocol):
    key_id: str

    def public_key(self) -> ec.EllipticCurvePublicKey: ...

    def sign_digest(self, digest: bytes) -> bytes: ...


class LocalKeySigner:
    def __init__(self, key_pem: bytes, key_id: str = "local") -> None:
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as err:
            raise MeasurementsError("SIGNER_KEY_INVALID", f"cannot load the PEM private key: {err}") from err
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP384R1):
            raise MeasurementsError("SIGNER_KEY_INVALID", "manifest signing key must be an EC P-384 private key")
        self._key = key
        self.key_id = key_id

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign_digest(self, digest: bytes) -> bytes:
        return self._key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA384())))


class KmsSigner:
    def __init__(self, key_id: str, kms_client: Any) -> None:
        self.key_id = key_id
        self._kms = kms_client
        self._public: ec.EllipticCurvePublicKey | None = None

    def public_key(self) -> ec.EllipticCurvePublicKey:
        if self._public is None:
            answer = self._kms.get_public_key(KeyId=self.key_id)
            # KeySpec; older responses (and moto) carry only the deprecated CustomerMasterKeySpec
            spec = answer.get("KeySpec") or answer.get("CustomerMasterKeySpec")
            usable = spec == "ECC_NIST_P384" and answer.get("KeyUsage") == "SIGN_VERIFY"
            if not usable or "ECDSA_SHA_384" not in answer.get("SigningAlgorithms", []):
                raise MeasurementsError(
                    "KMS_KEY_UNSUITABLE",
                    f"KMS key {self.key_id} is {spec}/{answer.get('KeyUsage')}, expected ECC_NIST_P384/SIGN_VERIFY "
                    "with ECDSA_SHA_384",
                )
            key = serialization.load_der_public_key(answer["PublicKey"])
            if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
                raise MeasurementsError("KMS_KEY_UNSUITABLE", f"KMS key {self.key_id} is not an EC P-384 key")
            self._public = key
        return self._public

    def sign_digest(self, digest: bytes) -> bytes:
        if len(digest) != 48:
            raise ValueError("KMS ECDSA_SHA_384 signs a 48-byte SHA-384 digest")
        public = self.public_key()
        answer = self._kms.sign(
            KeyId=self.key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_384"
        )
        signature: bytes = answer["Signature"]
        try:
            public.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA384())))
        except InvalidSignature as err:
            raise MeasurementsError(
                "KMS_SIGNATURE_MISMATCH",
                f"KMS key {self.key_id} returned a signature that does not verify over the SHA-384 digest sent "
                "with MessageType=DIGEST (the service hashed the digest again?); refusing to use it",
            ) from err
        return signature


def signer_from_spec(spec: str, *, kms_client_factory: Any = None) -> ManifestSigner:
    """``kms:KEY_ID`` (id, ARN or alias) → KMS; anything else is a path to a PEM private key."""
    if spec.startswith(KMS_PREFIX):
        key_id = spec[len(KMS_PREFIX) :]
        if not key_id:
            raise MeasurementsError("SIGNER_KEY_INVALID", "kms: needs a key id, ARN or alias")
        if kms_client_factory is None:
            import boto3

            kms_client_factory = lambda: boto3.client("kms")  # noqa: E731
        return KmsSigner(key_id, kms_client_factory())
    path = Path(spec)
    if not path.is_file():
        raise MeasurementsError("SIGNER_KEY_INVALID", f"no such key file: {spec}")
    return LocalKeySigner(path.read_bytes(), key_id=path.name)
