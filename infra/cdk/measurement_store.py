"""Where published measurements live: a versioned, object-locked bucket for manifests and EIFs, the P-384 key
that signs manifests, and the SSM parameters naming the current measurements.

Layout (shared with issue 3's publisher): ``manifests/<sha384>.json``, ``eifs/<eif sha384>.eif``, ``wheels/``;
parameters ``/trustdial/<deployment>/measurements/{current,pcr0,pcr1,pcr2,pcr8,eif-sha384}``.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.cdk.access_logs import AccessLogBucket
from infra.cdk.logged_bucket import logged_bucket
from infra.cdk.names import MEASUREMENT_LOGS, MEASUREMENTS, bucket_name

PARAMETER_NAMES = ("current", "pcr0", "pcr1", "pcr2", "pcr8", "eif-sha384")
# Constant in the template so a redeploy never overwrites what the publisher wrote.
UNPUBLISHED = "unpublished"
PUBLISHED_KEY_PATTERNS = ("manifests/*", "eifs/*", "wheels/*")


class MeasurementStore(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: str,
        parameter_prefix: str,
        retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.parameter_prefix = parameter_prefix
        logs = AccessLogBucket(self, "AccessLogs", bucket_name=bucket_name(deployment, MEASUREMENT_LOGS).value())
        self.bucket = logged_bucket(
            self,
            "Bucket",
            bucket_name=bucket_name(deployment, MEASUREMENTS).value(),
            access_logs=logs.bucket,
            log_prefix="measurements/",
            object_lock_enabled=True,
            object_lock_default_retention=s3.ObjectLockRetention.governance(cdk.Duration.days(retention_days)),
        )
        self.signing_key = kms.Key(
            self,
            "ManifestSigningKey",
            description="trustdial: signs measurement manifests (ECDSA P-384, SHA-384)",
            key_spec=kms.KeySpec.ECC_NIST_P384,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.parameters: dict[str, ssm.StringParameter] = {}
        for name in PARAMETER_NAMES:
            self.parameters[name] = ssm.StringParameter(
                self,
                f"Parameter-{name}",
                parameter_name=f"{parameter_prefix}{name}",
                string_value=UNPUBLISHED,
                description=f"trustdial measurements: {name} (written by `trustdial measurements publish`)",
            )
