"""Deterministic physical names and ARNs built from CloudFormation pseudo parameters.

Buckets get fixed names (``trustdial-<deployment>-<purpose>-<account>-<region>``) so other stacks and user data can
name them without cross-stack exports, and so cdk-nag's finding ids for wildcard resources are readable and can be
acknowledged one by one: each :class:`PseudoTemplate` renders both the CloudFormation value and cdk-nag's spelling.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk

MAX_PURPOSE_LENGTH = 12  # keeps bucket names within 63 characters for the longest region names


@dataclass(frozen=True)
class PseudoTemplate:
    """A string with ``{partition}``, ``{region}`` and ``{account}`` placeholders."""

    template: str

    def value(self) -> str:
        return self.template.format(partition=cdk.Aws.PARTITION, region=cdk.Aws.REGION, account=cdk.Aws.ACCOUNT_ID)

    def nag_spelling(self) -> str:
        return self.template.format(partition="<AWS::Partition>", region="<AWS::Region>", account="<AWS::AccountId>")


def bucket_name(deployment: str, purpose: str) -> PseudoTemplate:
    if len(purpose) > MAX_PURPOSE_LENGTH:
        raise ValueError(f"bucket purpose {purpose!r} is longer than {MAX_PURPOSE_LENGTH} characters")
    return PseudoTemplate(f"trustdial-{deployment}-{purpose}-{{account}}-{{region}}")


def bucket_arn(deployment: str, purpose: str) -> PseudoTemplate:
    return PseudoTemplate("arn:{partition}:s3:::" + bucket_name(deployment, purpose).template)


def bucket_objects_arn(deployment: str, purpose: str, key_pattern: str) -> PseudoTemplate:
    return PseudoTemplate(f"{bucket_arn(deployment, purpose).template}/{key_pattern}")


def parameter_arn(parameter_name: str) -> PseudoTemplate:
    return PseudoTemplate("arn:{partition}:ssm:{region}:{account}:parameter/" + parameter_name.lstrip("/"))


MEASUREMENTS = "measurements"
PROOFS = "proofs"
BUILD_SOURCE = "build-source"
ACCESS_LOGS = "access-logs"
MEASUREMENT_LOGS = "measure-logs"
BUILD_LOGS = "build-logs"
