"""Publish a signed measurement manifest locally for a development pipeline: the dev EIF's PCRs,
the segment model hashes, the zk segments' artifact hashes and the pipeline policy hash, signed
with a freshly generated local P-384 key (written next to it; for development only)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from infra.measurements import LocalKeySigner, create_manifest, sign_manifest

DEV_BUILD_TIME = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class PublishedManifest:
    signed: Path
    public_key: Path
    manifest_sha256: str


def publish_dev_manifest(
    *,
    eif: Path,
    blobs: Mapping[str, Path],
    models: Mapping[str, str],
    zk: Mapping[str, Mapping[str, str]],
    policy_sha256: str,
    directory: Path,
    source_revision: str = "development",
) -> PublishedManifest:
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (directory / "manifest-signing-dev.pem").write_bytes(key_pem)
    public_key = directory / "manifest-signing-dev.pub.pem"
    public_key.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    raw = create_manifest(
        eif=eif,
        source_revision=source_revision,
        build_time=DEV_BUILD_TIME,
        blobs={name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in blobs.items()},
        image_digest=None,
        models={name: {"sha256": digest} for name, digest in models.items()},
        zk={name: dict(fields) for name, fields in zk.items()},
        pipeline_policy_sha256=policy_sha256,
    )
    signed = directory / "manifest.cose"
    signed.write_bytes(sign_manifest(raw, LocalKeySigner(key_pem, key_id="trustdial-dev-local")))
    return PublishedManifest(signed=signed, public_key=public_key, manifest_sha256=hashlib.sha256(raw).hexdigest())
