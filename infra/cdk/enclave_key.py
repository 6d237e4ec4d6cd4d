"""The model-weights key: only the enclave host role may decrypt, and only from an enclave whose attestation
document carries one accepted set of PCR0, PCR1 and PCR2.

Policy shape (see cdk.md §4.2): account administrators get everything except ``kms:Decrypt``, ``kms:ReEncrypt*``
and ``kms:CreateGrant``; one Deny per PCR refuses those plaintext paths to every principal whose request lacks an
accepted value; one Allow per accepted PCR set lets the host role decrypt when all three values match.

``immutable_policy`` (config ``immutable_key_policy_i_understand_this_is_permanent``) adds a Deny of
``kms:PutKeyPolicy`` for every principal, so no administrator can ever rewrite the policy and then decrypt. It is
permanent: the key can never be re-pointed at a new enclave image (new PCRs mean a new key and re-sealed models),
and CloudFormation can no longer update this key's policy. KMS refuses such a policy unless the policy lockout
safety check is bypassed, which this option does (``BypassPolicyLockoutSafetyCheck``) — see docs/sealed-models.md §9.
"""

from __future__ import annotations

from typing import cast

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.cdk.pcrs import EnclavePcrs

PLAINTEXT_ACTIONS = ("kms:Decrypt", "kms:ReEncrypt*", "kms:CreateGrant")
IMMUTABLE_POLICY_SID = "DenyEveryKeyPolicyChangeForeverImmutable"
ATTESTED_PCR_INDICES = (0, 1, 2)


def attestation_condition_key(index: int) -> str:
    return f"kms:RecipientAttestation:PCR{index}"


class EnclaveKey(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        host_role: iam.IRole,
        pcr_sets: tuple[EnclavePcrs, ...],
        immutable_policy: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        if not pcr_sets:
            raise ValueError("EnclaveKey needs at least one accepted PCR set; an empty set would be unusable")
        statements = [
            iam.PolicyStatement(
                sid="AdministerButNeverDecrypt",
                effect=iam.Effect.ALLOW,
                principals=[iam.AccountRootPrincipal()],
                not_actions=list(PLAINTEXT_ACTIONS),
                resources=["*"],
            )
        ]
        for index in ATTESTED_PCR_INDICES:
            statements.append(
                iam.PolicyStatement(
                    sid=f"DenyPlaintextUnlessAttestedPcr{index}",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=list(PLAINTEXT_ACTIONS),
                    resources=["*"],
                    conditions={
                        "StringNotEqualsIgnoreCase": {
                            attestation_condition_key(index): sorted({s.by_index()[index] for s in pcr_sets})
                        }
                    },
                )
            )
        for number, pcrs in enumerate(pcr_sets):
            statements.append(
                iam.PolicyStatement(
                    sid=f"AllowHostRoleDecryptInAttestedEnclave{number}",
                    effect=iam.Effect.ALLOW,
                    principals=[iam.ArnPrincipal(host_role.role_arn)],
                    actions=["kms:Decrypt"],
                    resources=["*"],
                    conditions={
                        "StringEqualsIgnoreCase": {
                            attestation_condition_key(index): pcrs.by_index()[index] for index in ATTESTED_PCR_INDICES
                        }
                    },
                )
            )
        if immutable_policy:
            statements.append(
                iam.PolicyStatement(
                    sid=IMMUTABLE_POLICY_SID,
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["kms:PutKeyPolicy"],
                    resources=["*"],
                )
            )
        self.key = kms.Key(
            self,
            "Key",
            description="trustdial: model weights, decryptable only inside an attested enclave",
            enable_key_rotation=True,
            pending_window=cdk.Duration.days(30),
            policy=iam.PolicyDocument(statements=statements),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        if immutable_policy:
            cfn_key = cast(kms.CfnKey, self.key.node.default_child)
            cfn_key.bypass_policy_lockout_safety_check = True
