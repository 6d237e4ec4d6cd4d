"""Shared helpers: a manifest for the kat1 EIF, P-384 key files, and an independent COSE_Sign1 signer."""

from __future__ import annotations

from pathlib import Path

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from infra.measurements import create_manifest

DATA = Path(__file__).resolve().parent.parent / "data" / "eif"
KAT1 = DATA / "kat1.rust.eif"
REVISION = "8b67b30" + "0" * 33


def kat1_manifest(**overrides: object) -> bytes:
    args: dict[str, object] = {
        "eif": KAT1,
        "source_revision": REVISION,
        "build_time": "2026-11-26T00:00:00Z",
        "blobs": {"init": "11" * 32, "nsm.ko": "22" * 32},
        "image_digest": "sha256:" + "33" * 32,
        "models": {"mnist": {"sha256": "44" * 32}},
    }
    args.update(overrides)
    return create_manifest(**args)  # type: ignore[arg-type]


def key_files(folder: Path, curve: ec.EllipticCurve | None = None) -> tuple[Path, Path]:
    key = ec.generate_private_key(curve or ec.SECP384R1())
    private, public = folder / "signing.pem", folder / "signing.pub.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def cose_sign1(
    key: ec.EllipticCurvePrivateKey, payload: bytes, protected: bytes, unprotected: dict[object, object] | None = None
) -> bytes:
    """An ES384 COSE_Sign1 (tag 18) built here with cbor2 + cryptography, independent of the code under test:
    RFC 9052 Sig_structure ``["Signature1", protected, h'', payload]``, signature raw r||s."""
    der = key.sign(cbor2.dumps(["Signature1", protected, b"", payload]), ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    return bytes(cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected or {}, payload, signature])))
