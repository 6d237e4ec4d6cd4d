"""The receipt key: generated in the enclave at start, never leaves it; its public half is
bound into an attestation document. ECDSA P-256 by default (see docs/receipts.md §7)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from trustdial_verifier.unstable.cose import ALG_EDDSA, ALG_ES256, raw_ecdsa_signature, sig_structure
from trustdial_verifier.unstable.receipts import encode_seal, protected_header

KEY_TYPES = ("ed25519", "p256")


@dataclass(frozen=True)
class ReceiptKey:
    key_type: str
    private_key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, key_type: str = "p256") -> ReceiptKey:
        if key_type == "ed25519":
            return cls(key_type, ed25519.Ed25519PrivateKey.generate())
        if key_type == "p256":
            return cls(key_type, ec.generate_private_key(ec.SECP256R1()))
        raise ValueError(f"expected a key type in {KEY_TYPES}, found {key_type!r}")

    @property
    def alg(self) -> int:
        return ALG_EDDSA if self.key_type == "ed25519" else ALG_ES256

    def public_key_der(self) -> bytes:
        """DER SubjectPublicKeyInfo: the bytes placed in the attestation document's public_key."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, message: bytes) -> bytes:
        """Raw signature: 64 bytes for both Ed25519 and ES256 (r||s)."""
        if isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            return self.private_key.sign(message)
        return raw_ecdsa_signature(self.private_key.sign(message, ec.ECDSA(hashes.SHA256())), ALG_ES256)

    def seal(self, payload: bytes) -> bytes:
        """An untagged COSE_Sign1 over ``payload`` (docs/receipts.md §4)."""
        protected = protected_header(self.alg)
        return encode_seal(protected, payload, self.sign(sig_structure(protected, payload)))
