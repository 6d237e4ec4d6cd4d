"""Publish a signed manifest (and optionally its EIF) to a versioned S3 bucket and SSM.

Order, so that a failure anywhere leaves no pointer claiming an incompletely stored manifest:
1. checks: bucket versioning enabled, manifest valid, EIF (if given) matches the manifest;
2. S3 objects, content-addressed, never overwritten (an existing key is reused after its
   digest is checked): ``eifs/<eif sha384>.eif``, ``manifests/<manifest sha384>.json``,
   ``manifests/<manifest sha384>.json.cose``;
3. SSM ``<prefix>pcr0|pcr1|pcr2|pcr8|eif-sha384``;
4. SSM ``<prefix>current`` last: JSON naming the objects with their version ids.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from trustdial_verifier.errors import VerificationError
from trustdial_verifier.unstable.measurements import parse_manifest, signed_payload

from infra.measurements.errors import MeasurementsError

DEPLOYMENT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
UNSIGNED_PCR8 = "unsigned"


def ssm_prefix(deployment: str) -> str:
    if not DEPLOYMENT.fullmatch(deployment):
        raise MeasurementsError(
            "PUBLISH_PRECONDITION", f"deployment name {deployment!r} must match {DEPLOYMENT.pattern}"
        )
    return f"/trustdial/{deployment}/measurements/"


@dataclass(frozen=True)
class PublishResult:
    current: dict[str, Any]
    parameters: dict[str, str]


def _file_sha384(path: Path) -> str:
    digest = hashlib.sha384()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _put_once(s3: Any, bucket: str, key: str, body: Any, sha384: str) -> str:
    """Store ``key`` unless it exists; return the version id holding these exact bytes."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
        head = None
    if head is not None:
        stored = head.get("Metadata", {}).get("sha384")
        if stored != sha384:
            raise MeasurementsError(
                "PUBLISH_PRECONDITION", f"s3://{bucket}/{key} exists with sha384 {stored}, expected {sha384}"
            )
        return str(head["VersionId"])
    answer = s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sha384": sha384})
    version = answer.get("VersionId")
    if not version or version == "null":
        raise MeasurementsError("PUBLISH_PRECONDITION", f"s3://{bucket}/{key} stored without a version id")
    return str(version)


def publish(
    *, signed_manifest: bytes, bucket: str, deployment: str, s3: Any, ssm: Any, eif: Path | None = None
) -> PublishResult:
    prefix = ssm_prefix(deployment)
    try:
        manifest_bytes = signed_payload(signed_manifest)
        manifest = parse_manifest(manifest_bytes)
    except VerificationError as err:
        raise MeasurementsError("PUBLISH_PRECONDITION", f"not a valid signed manifest: {err.reason}") from err
    try:
        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        if versioning != "Enabled":
            raise MeasurementsError("PUBLISH_PRECONDITION", f"bucket {bucket} must have versioning enabled")
        if eif is not None and _file_sha384(eif) != manifest.eif_sha384:
            raise MeasurementsError("PUBLISH_PRECONDITION", f"{eif} does not have the sha384 the manifest records")
        manifest_sha384 = hashlib.sha384(manifest_bytes).hexdigest()
        current: dict[str, Any] = {"manifest_sha384": manifest_sha384, "eif": None}
        if eif is not None:
            key = f"eifs/{manifest.eif_sha384}.eif"
            with eif.open("rb") as body:
                version = _put_once(s3, bucket, key, body, manifest.eif_sha384)
            current["eif"] = f"s3://{bucket}/{key}?versionId={version}"
        key = f"manifests/{manifest_sha384}.json"
        version = _put_once(s3, bucket, key, manifest_bytes, manifest_sha384)
        current["manifest"] = f"s3://{bucket}/{key}?versionId={version}"
        signed_sha384 = hashlib.sha384(signed_manifest).hexdigest()
        version = _put_once(s3, bucket, key + ".cose", signed_manifest, signed_sha384)
        current["signed_manifest"] = f"s3://{bucket}/{key}.cose?versionId={version}"
        pcrs = manifest.pcrs
        parameters = {
            "pcr0": str(pcrs["PCR0"]),
            "pcr1": str(pcrs["PCR1"]),
            "pcr2": str(pcrs["PCR2"]),
            "pcr8": pcrs["PCR8"] or UNSIGNED_PCR8,
            "eif-sha384": manifest.eif_sha384,
        }
        for name, value in parameters.items():
            ssm.put_parameter(Name=prefix + name, Value=value, Type="String", Overwrite=True)
        pointer = json.dumps(current, sort_keys=True, separators=(",", ":"))
        ssm.put_parameter(Name=prefix + "current", Value=pointer, Type="String", Overwrite=True)
    except (ClientError, BotoCoreError) as err:
        raise MeasurementsError("PUBLISH_FAILED", f"publishing stopped, 'current' not updated: {err}") from err
    return PublishResult(current=current, parameters={**parameters, "current": pointer})
