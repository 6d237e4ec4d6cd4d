"""The opt-in immutable key policy (issue 18): with ``immutable_key_policy_i_understand_this_is_permanent`` the
model-weights key denies ``kms:PutKeyPolicy`` to every principal and the template bypasses KMS's lockout check (which
would otherwise refuse such a policy); without it, administrators keep ``PutKeyPolicy`` (the README caveat)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from infra_testkit import TEST_CONFIG, SynthesizedApp, feature_flags, only_resource

from infra.cdk.errors import InfraConfigError

FLAG = "immutable_key_policy_i_understand_this_is_permanent"


def weights_key(template: dict[str, Any]) -> dict[str, Any]:
    _, key = only_resource(template, "AWS::KMS::Key")
    properties: dict[str, Any] = key["Properties"]
    return properties


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def put_key_policy_denies(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statements if s["Effect"] == "Deny" and "kms:PutKeyPolicy" in as_list(s.get("Action", []))]


@pytest.fixture(scope="module")
def immutable(synthesized: SynthesizedApp) -> Iterator[dict[str, Any]]:
    """The enclave hosts stack synthesized with the option on (``synthesized`` first: jsii is then warm)."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.cdk.config import DeploymentConfig, config_from_mapping
    from infra.cdk.stacks import add_trustdial_stacks

    app = cdk.App(context=feature_flags())
    config = DeploymentConfig(**config_from_mapping({**TEST_CONFIG, FLAG: True}, "test config"))
    stacks = add_trustdial_stacks(app, config)
    app.synth()
    yield Template.from_stack(stacks.enclave_hosts).to_json()


def test_off_by_default_and_administrators_can_still_rewrite_the_policy(synthesized: SynthesizedApp) -> None:
    properties = weights_key(synthesized.templates["enclave_hosts"])
    statements = properties["KeyPolicy"]["Statement"]
    assert put_key_policy_denies(statements) == []
    assert "BypassPolicyLockoutSafetyCheck" not in properties
    (admin,) = [s for s in statements if s.get("Sid") == "AdministerButNeverDecrypt"]
    assert "kms:PutKeyPolicy" not in as_list(admin["NotAction"])  # the caveat: root may PutKeyPolicy, then decrypt


def test_on_denies_put_key_policy_to_every_principal_without_conditions(
    synthesized: SynthesizedApp, immutable: dict[str, Any]
) -> None:
    statements = weights_key(immutable)["KeyPolicy"]["Statement"]
    (deny,) = put_key_policy_denies(statements)
    assert deny["Principal"] == {"AWS": "*"}
    assert as_list(deny["Action"]) == ["kms:PutKeyPolicy"]
    assert deny["Resource"] == "*"
    assert "Condition" not in deny  # nobody, under no condition
    baseline = weights_key(synthesized.templates["enclave_hosts"])["KeyPolicy"]["Statement"]
    assert [s for s in statements if s is not deny] == baseline  # everything else unchanged


def test_on_bypasses_the_lockout_safety_check_kms_would_otherwise_fail_on(immutable: dict[str, Any]) -> None:
    assert weights_key(immutable)["BypassPolicyLockoutSafetyCheck"] is True


def test_on_keeps_the_key_retained(immutable: dict[str, Any]) -> None:
    _, key = only_resource(immutable, "AWS::KMS::Key")
    assert key["DeletionPolicy"] == "Retain" and key["UpdateReplacePolicy"] == "Retain"


def test_immutable_with_development_placeholder_pcrs_is_refused() -> None:
    from infra.cdk.config import DeploymentConfig

    with pytest.raises(InfraConfigError) as caught:
        DeploymentConfig(**{FLAG: True})
    assert caught.value.code == "IMMUTABLE_DEVELOPMENT_PCRS"


@pytest.mark.parametrize("value", ["true", 1, None])
def test_the_flag_must_be_a_json_boolean(value: object) -> None:
    from infra.cdk.config import DeploymentConfig, config_from_mapping

    with pytest.raises(InfraConfigError) as caught:
        DeploymentConfig(**config_from_mapping({**TEST_CONFIG, FLAG: value}, "test config"))
    assert caught.value.code == "BAD_CONFIG"
