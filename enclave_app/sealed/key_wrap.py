"""RSA-OAEP with SHA-256 and MGF1-SHA-256 (empty label): the key transport of both KMS's CiphertextForRecipient and
``file:PEM`` sealing, and the key id a ``file:PEM`` header records."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

OAEP_SHA256 = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def rsa_key_id(public_key: rsa.RSAPublicKey) -> str:
    """``sha256:`` + hex SHA-256 of the DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()
