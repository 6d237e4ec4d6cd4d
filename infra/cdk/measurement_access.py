"""Least-privilege IAM statements for the measurement store, written out action by action (no ``grant_*``
helpers, whose action wildcards cdk-nag rightly flags). Readers are enclave hosts and provers; the publisher is the
image build. Returns the statements and the wildcard resources they use, for exact cdk-nag acknowledgments."""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import aws_iam as iam

from infra.cdk.measurement_store import PARAMETER_NAMES, PUBLISHED_KEY_PATTERNS
from infra.cdk.names import MEASUREMENTS, PseudoTemplate, bucket_arn, bucket_objects_arn, parameter_arn


@dataclass
class AccessGrant:
    statements: list[iam.PolicyStatement] = field(default_factory=list)
    wildcard_resources: list[PseudoTemplate] = field(default_factory=list)

    def attach(self, principal: iam.IPrincipal) -> None:
        for statement in self.statements:
            principal.add_to_principal_policy(statement)


def _objects(deployment: str, key_patterns: tuple[str, ...]) -> list[PseudoTemplate]:
    return [bucket_objects_arn(deployment, MEASUREMENTS, pattern) for pattern in key_patterns]


def _list_prefixes(deployment: str, key_patterns: tuple[str, ...]) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        actions=["s3:ListBucket"],
        resources=[bucket_arn(deployment, MEASUREMENTS).value()],
        conditions={"StringLike": {"s3:prefix": list(key_patterns)}},
    )


def _parameters(parameter_prefix: str) -> list[str]:
    return [parameter_arn(parameter_prefix + name).value() for name in PARAMETER_NAMES]


def wheel_reader(deployment: str) -> AccessGrant:
    """Read the published trustdial wheels (provers install from them)."""
    objects = _objects(deployment, ("wheels/*",))
    return AccessGrant(
        statements=[
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[o.value() for o in objects]),
            _list_prefixes(deployment, ("wheels/*",)),
        ],
        wildcard_resources=objects,
    )


def measurement_reader(deployment: str, parameter_prefix: str, signing_key_arn: str) -> AccessGrant:
    """Read manifests, EIFs and wheels (any version), the current parameters and the signing public key."""
    objects = _objects(deployment, PUBLISHED_KEY_PATTERNS)
    return AccessGrant(
        statements=[
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:GetObjectVersion"], resources=[o.value() for o in objects]
            ),
            _list_prefixes(deployment, ("wheels/*",)),
            iam.PolicyStatement(actions=["ssm:GetParameter"], resources=_parameters(parameter_prefix)),
            iam.PolicyStatement(actions=["kms:GetPublicKey"], resources=[signing_key_arn]),
        ],
        wildcard_resources=objects,
    )


def measurement_publisher(deployment: str, parameter_prefix: str, signing_key_arn: str) -> AccessGrant:
    """Write manifests, EIFs and wheels, sign manifests, and overwrite the current parameters."""
    objects = _objects(deployment, PUBLISHED_KEY_PATTERNS)
    return AccessGrant(
        statements=[
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject", "s3:GetObjectVersion"], resources=[o.value() for o in objects]
            ),
            _list_prefixes(deployment, PUBLISHED_KEY_PATTERNS),
            iam.PolicyStatement(
                actions=["s3:GetBucketVersioning"], resources=[bucket_arn(deployment, MEASUREMENTS).value()]
            ),
            iam.PolicyStatement(
                actions=["ssm:GetParameter", "ssm:PutParameter"], resources=_parameters(parameter_prefix)
            ),
            iam.PolicyStatement(actions=["kms:Sign", "kms:GetPublicKey"], resources=[signing_key_arn]),
        ],
        wildcard_resources=objects,
    )
