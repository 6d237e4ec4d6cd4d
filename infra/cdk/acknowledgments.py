"""cdk-nag v3 acknowledgments: one per finding, each with the reason it is accepted."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

from infra.cdk.names import PseudoTemplate


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


def acknowledge_wildcard_resources(construct: IConstruct, resources: list[PseudoTemplate], reason: str) -> None:
    """Acknowledge ``AwsSolutions-IAM5`` for exactly these wildcard resources (not for IAM5 in general)."""
    for resource in resources:
        acknowledge(construct, f"AwsSolutions-IAM5[Resource::{resource.nag_spelling()}]", reason)


def acknowledge_wildcard_actions(construct: IConstruct, actions: list[str], reason: str) -> None:
    for action in actions:
        acknowledge(construct, f"AwsSolutions-IAM5[Action::{action}]", reason)
