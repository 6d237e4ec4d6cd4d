"""The hardened bucket every trustdial data bucket starts from: versioned, public access blocked,
S3-managed encryption, TLS only, server access logs to a given bucket, retained on stack deletion."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct


def logged_bucket(
    scope: Construct,
    construct_id: str,
    *,
    bucket_name: str,
    access_logs: s3.IBucket,
    log_prefix: str,
    **extra: Any,
) -> s3.Bucket:
    """``extra`` adds bucket properties (e.g. object lock); the hardened ones cannot be overridden."""
    hardened: dict[str, Any] = {
        "bucket_name": bucket_name,
        "versioned": True,
        "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
        "encryption": s3.BucketEncryption.S3_MANAGED,
        "enforce_ssl": True,
        "server_access_logs_bucket": access_logs,
        "server_access_logs_prefix": log_prefix,
        "removal_policy": cdk.RemovalPolicy.RETAIN,
    }
    clash = hardened.keys() & extra.keys()
    if clash:
        raise ValueError(f"logged_bucket sets {sorted(clash)} itself")
    return s3.Bucket(scope, construct_id, **hardened, **extra)
