"""Publishing to S3 + SSM and KMS signing, against moto's server on 127.0.0.1 (real HTTP)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from aws_loopback import AWS_TEST_ENV
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from eif.conftest import run_cli
from trustdial_verifier._internal.measurements import load_signed_manifest

from infra.measurements import KmsSigner, LocalKeySigner, publish, sign_manifest
from infra.measurements.errors import MeasurementsError
from measurements.manifests import KAT1, kat1_manifest, key_files

BUCKET = "trustdial-measurements"
PREFIX = "/trustdial/prod/measurements/"


def _bucket(s3: Any, versioned: bool = True) -> None:
    s3.create_bucket(Bucket=BUCKET)
    if versioned:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})


def _signed(tmp_path: Path, **overrides: object) -> tuple[bytes, Path]:
    private, public = key_files(tmp_path)
    return sign_manifest(kat1_manifest(**overrides), LocalKeySigner(private.read_bytes())), public


def _params(ssm: Any) -> dict[str, str]:
    answer = ssm.get_parameters_by_path(Path=PREFIX)
    return {p["Name"][len(PREFIX) :]: p["Value"] for p in answer["Parameters"]}


def _get(s3: Any, uri: str) -> bytes:
    path, _, version = uri.removeprefix(f"s3://{BUCKET}/").partition("?versionId=")
    return bytes(s3.get_object(Bucket=BUCKET, Key=path, VersionId=version)["Body"].read())


def test_publish_stores_objects_then_parameters(aws: dict[str, Any], tmp_path: Path) -> None:
    _bucket(aws["s3"])
    signed, public = _signed(tmp_path)
    publish(signed_manifest=signed, bucket=BUCKET, deployment="prod", s3=aws["s3"], ssm=aws["ssm"], eif=KAT1)
    params = _params(aws["ssm"])
    current = json.loads(params["current"])
    manifest = load_signed_manifest(_get(aws["s3"], current["signed_manifest"]), public.read_bytes())
    assert current["manifest_sha384"] == hashlib.sha384(manifest.raw).hexdigest()
    assert _get(aws["s3"], current["manifest"]) == manifest.raw
    assert _get(aws["s3"], current["eif"]) == KAT1.read_bytes()
    assert current["eif"].startswith(f"s3://{BUCKET}/eifs/{hashlib.sha384(KAT1.read_bytes()).hexdigest()}.eif")
    assert current["manifest"].startswith(f"s3://{BUCKET}/manifests/{current['manifest_sha384']}.json?versionId=")
    assert params["pcr0"] == manifest.pcrs["PCR0"] and params["pcr8"] == "unsigned"
    assert params["eif-sha384"] == hashlib.sha384(KAT1.read_bytes()).hexdigest()


def test_republishing_never_writes_a_new_object_version(aws: dict[str, Any], tmp_path: Path) -> None:
    _bucket(aws["s3"])
    signed, _ = _signed(tmp_path)
    first = publish(signed_manifest=signed, bucket=BUCKET, deployment="prod", s3=aws["s3"], ssm=aws["ssm"], eif=KAT1)
    second = publish(signed_manifest=signed, bucket=BUCKET, deployment="prod", s3=aws["s3"], ssm=aws["ssm"], eif=KAT1)
    assert first.current == second.current
    versions = aws["s3"].list_object_versions(Bucket=BUCKET)["Versions"]
    assert len(versions) == 3


def test_unversioned_bucket_is_refused_before_anything_is_written(aws: dict[str, Any], tmp_path: Path) -> None:
    _bucket(aws["s3"], versioned=False)
    signed, _ = _signed(tmp_path)
    with pytest.raises(MeasurementsError) as info:
        publish(signed_manifest=signed, bucket=BUCKET, deployment="prod", s3=aws["s3"], ssm=aws["ssm"])
    assert info.value.code == "PUBLISH_PRECONDITION"
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket=BUCKET)
    assert _params(aws["ssm"]) == {}


def test_eif_not_matching_the_manifest_is_refused(aws: dict[str, Any], tmp_path: Path) -> None:
    _bucket(aws["s3"])
    signed, _ = _signed(tmp_path)
    other = tmp_path / "other.eif"
    other.write_bytes(KAT1.read_bytes() + b"x")
    with pytest.raises(MeasurementsError) as info:
        publish(signed_manifest=signed, bucket=BUCKET, deployment="prod", s3=aws["s3"], ssm=aws["ssm"], eif=other)
    assert info.value.code == "PUBLISH_PRECONDITION"


def test_failure_mid_publish_leaves_the_previous_current_pointer(aws: dict[str, Any], tmp_path: Path) -> None:
    _bucket(aws["s3"])
    first, _ = _signed(tmp_path)
    publish(signed_manifest=first, bucket=BUCKET, deployment="prod", s3=aws["s3"], ssm=aws["ssm"])
    before = _params(aws["ssm"])
    later = tmp_path / "later"
    later.mkdir()
    second, _ = _signed(later, source_revision="f" * 40)
    # a real failure from the server: the signed manifest's PutObject goes to a bucket that does not exist
    calls: list[str] = []

    def redirect(params: dict[str, Any], **_: Any) -> None:
        calls.append(params["Key"])
        if params["Key"].endswith(".cose"):
            params["Bucket"] = "no-such-bucket"

    aws["s3"].meta.events.register("provide-client-params.s3.PutObject", redirect)
    with pytest.raises(MeasurementsError) as info:
        publish(signed_manifest=second, bucket=BUCKET, deployment="prod", s3=aws["s3"], ssm=aws["ssm"])
    assert info.value.code == "PUBLISH_FAILED"
    assert any(k.endswith(".json") for k in calls), "the manifest object was written before the failure"
    assert _params(aws["ssm"]) == before


def test_cli_publish_against_endpoint(aws: dict[str, Any], tmp_path: Path) -> None:
    _bucket(aws["s3"])
    signed, _ = _signed(tmp_path)
    path = tmp_path / "m.cose"
    path.write_bytes(signed)
    status, out, err = run_cli(
        "trustdial", "measurements", "publish", "--signed", str(path), "--bucket", BUCKET, "--deployment", "prod",
        "--endpoint-url", aws["endpoint"], "--region", "us-east-1",
    )  # fmt: skip
    assert status == 0, err
    assert json.loads(_params(aws["ssm"])["current"]) == out["current"]


def test_kms_signer_reads_a_p384_public_key(aws: dict[str, Any]) -> None:
    key = aws["kms"].create_key(KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    public = KmsSigner(key, aws["kms"]).public_key()
    der = aws["kms"].get_public_key(KeyId=key)["PublicKey"]
    assert public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == der


def test_kms_key_of_the_wrong_spec_is_refused(aws: dict[str, Any]) -> None:
    key = aws["kms"].create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    with pytest.raises(MeasurementsError) as info:
        KmsSigner(key, aws["kms"]).public_key()
    assert info.value.code == "KMS_KEY_UNSUITABLE"


def test_kms_signature_not_over_the_sent_digest_is_refused(aws: dict[str, Any]) -> None:
    """moto 5.2.5 does not implement MessageType=DIGEST: it hashes the 48-byte digest again, so its
    signature covers SHA-384(digest). Real KMS signs the digest itself. The signer checks the returned
    signature over the digest it sent and refuses anything else, so moto's answer must be refused."""
    key = aws["kms"].create_key(KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    signer = KmsSigner(key, aws["kms"])
    digest = hashlib.sha384(b"manifest").digest()
    with pytest.raises(MeasurementsError) as info:
        signer.sign_digest(digest)
    assert info.value.code == "KMS_SIGNATURE_MISMATCH"
    # the request did carry the digest as the message: moto's signature verifies over sha384(digest)
    answer = aws["kms"].sign(KeyId=key, Message=digest, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_384")
    signer.public_key().verify(answer["Signature"], hashlib.sha384(digest).digest(),
                               ec.ECDSA(Prehashed(hashes.SHA384())))  # fmt: skip


def test_kms_unknown_key_is_an_error_from_the_service(aws: dict[str, Any]) -> None:
    with pytest.raises(ClientError):
        KmsSigner("00000000-0000-0000-0000-000000000000", aws["kms"]).public_key()


def test_kms_digest_signing_produces_a_manifest_that_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    from measurements.kms_digest_server import KEY_ID, kms_digest_server

    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    with kms_digest_server() as (endpoint, key, requests):
        kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1")
        signed = sign_manifest(kat1_manifest(), KmsSigner(KEY_ID, kms))
    manifest = load_signed_manifest(signed, key.public_key())
    assert manifest.raw == kat1_manifest()
    sign = [r for r in requests if r["target"].endswith("Sign")]
    assert len(sign) == 1
    assert sign[0]["MessageType"] == "DIGEST" and sign[0]["SigningAlgorithm"] == "ECDSA_SHA_384"


def test_cli_signs_with_kms_and_the_verifier_accepts(tmp_path: Path) -> None:
    import os

    from measurements.kms_digest_server import KEY_ID, kms_digest_server

    manifest = tmp_path / "m.json"
    manifest.write_bytes(kat1_manifest())
    env = {**os.environ, **AWS_TEST_ENV}
    with kms_digest_server() as (endpoint, key, _):
        status, out, err = run_cli("trustdial", "measurements", "sign", "--manifest", str(manifest), "--key",
                                   f"kms:{KEY_ID}", "--endpoint-url", endpoint, "--region", "us-east-1",
                                   "--output", str(tmp_path / "m.cose"), env=env)  # fmt: skip
    assert status == 0, err
    assert out["key_id"] == KEY_ID
    public = tmp_path / "kms.pub.pem"
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    status, out, _ = run_cli("trustdial-verify", "measurements", str(tmp_path / "m.cose"), "--public-key", str(public))
    assert status == 0 and out["valid"] is True
