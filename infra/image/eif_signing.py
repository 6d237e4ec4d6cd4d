"""The EIF signature section as aws-nitro-enclaves-image-format's EifSigner writes it:
serde_cbor ``[PcrSignature{signing_certificate, signature}]`` with both byte vectors encoded as
CBOR arrays of integers, the signature an untagged COSE_Sign1 over ``PcrInfo{0, PCR0}``."""

from __future__ import annotations

from dataclasses import dataclass

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from trustdial_verifier.unstable.cose import (
    ALG_ES256,
    ALG_ES384,
    ALG_ES512,
    ECDSA_ALGORITHMS,
    encode_cose_sign1,
    encode_header,
    raw_ecdsa_signature,
    sig_structure,
)

from infra.image.errors import BuildError

_ALGORITHMS: dict[str, int] = {"secp256r1": ALG_ES256, "secp384r1": ALG_ES384, "secp521r1": ALG_ES512}


@dataclass(frozen=True)
class EifSigner:
    private_key: ec.EllipticCurvePrivateKey
    certificate_pem: bytes

    @classmethod
    def from_pem_files(cls, key_pem: bytes, cert_pem: bytes) -> EifSigner:
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
            cert = x509.load_pem_x509_certificate(cert_pem)
        except (ValueError, TypeError) as err:
            raise BuildError("EIF_BUILD_SIGNING", f"cannot load signing key/certificate: {err}") from err
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in _ALGORITHMS:
            raise BuildError("EIF_BUILD_SIGNING", "signing key must be an EC key on P-256, P-384 or P-521")
        pub = serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(serialization.Encoding.DER, pub) != cert.public_key().public_bytes(
            serialization.Encoding.DER, pub
        ):
            raise BuildError("EIF_BUILD_SIGNING", "signing key does not match the certificate's public key")
        return cls(key, cert_pem)

    def section(self, pcr0: bytes) -> bytes:
        alg = _ALGORITHMS[self.private_key.curve.name]
        protected = encode_header({1: alg})
        payload = cbor2.dumps({"register_index": 0, "register_value": list(pcr0)})
        der = self.private_key.sign(sig_structure(protected, payload), ec.ECDSA(ECDSA_ALGORITHMS[alg].hash()))
        cose = encode_cose_sign1(protected, payload, raw_ecdsa_signature(der, alg), tagged=False)
        return cbor2.dumps([{"signing_certificate": list(self.certificate_pem), "signature": list(cose)}])
