"""Shared helpers: a manifest for the kat1 EIF and P-384 key files."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

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
