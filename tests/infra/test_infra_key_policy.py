"""The model-weights key policy, parsed from the synthesized template and evaluated with a small, independent
model of IAM policy evaluation (explicit Deny wins; otherwise any matching Allow grants; missing condition keys make
positive string operators false and negated ones true)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from infra_testkit import CURRENT_PCRS, NEXT_PCRS, SynthesizedApp, label_pcr, only_resource

PCR_KEYS = {index: f"kms:RecipientAttestation:PCR{index}" for index in (0, 1, 2)}
HOST_ROLE = "host-role"
ROOT = "account-root"
OTHER_ROLE = "other-role-in-account"
PLAINTEXT_ACTIONS = ["kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:CreateGrant"]
ADMIN_ACTIONS = ["kms:PutKeyPolicy", "kms:DescribeKey", "kms:Encrypt", "kms:ScheduleKeyDeletion"]
ACCEPTED_SETS = [CURRENT_PCRS, NEXT_PCRS]


def key_policy(synthesized: SynthesizedApp) -> list[dict[str, Any]]:
    _, key = only_resource(synthesized.templates["enclave_hosts"], "AWS::KMS::Key")
    statements: list[dict[str, Any]] = key["Properties"]["KeyPolicy"]["Statement"]
    return statements


def host_role_logical_id(synthesized: SynthesizedApp) -> str:
    name, _ = only_resource(synthesized.templates["enclave_hosts"], "AWS::IAM::Role")
    return name


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def principal_of(statement: dict[str, Any], role_id: str) -> set[str]:
    """Which of our modelled principals a statement's Principal covers."""
    covered: set[str] = set()
    for principal in as_list(statement["Principal"]["AWS"]):
        if principal == "*":
            return {HOST_ROLE, ROOT, OTHER_ROLE}
        if principal == {"Fn::GetAtt": [role_id, "Arn"]}:
            covered.add(HOST_ROLE)
        elif isinstance(principal, dict) and "Fn::Join" in principal and principal["Fn::Join"][1][-1] == ":root":
            # the account root delegates to IAM: any principal of the account with an IAM permission
            covered |= {ROOT, OTHER_ROLE, HOST_ROLE}
        else:
            raise AssertionError(f"unexpected principal in key policy: {principal!r}")
    return covered


def action_matches(statement: dict[str, Any], action: str) -> bool:
    if "Action" in statement:
        return any(fnmatch.fnmatchcase(action, pattern) for pattern in as_list(statement["Action"]))
    return not any(fnmatch.fnmatchcase(action, pattern) for pattern in as_list(statement["NotAction"]))


def conditions_hold(statement: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, keys in statement.get("Condition", {}).items():
        for key, values in keys.items():
            wanted = {value.lower() for value in as_list(values)}
            present = context.get(key)
            if operator == "StringEqualsIgnoreCase":
                if present is None or present.lower() not in wanted:
                    return False
            elif operator == "StringNotEqualsIgnoreCase":
                if present is not None and present.lower() in wanted:
                    return False
            else:
                raise AssertionError(f"operator {operator} not modelled")
    return True


@dataclass(frozen=True)
class Request:
    principal: str
    action: str
    context: dict[str, str]


def allowed(statements: list[dict[str, Any]], role_id: str, request: Request) -> bool:
    matching = [
        s
        for s in statements
        if request.principal in principal_of(s, role_id)
        and action_matches(s, request.action)
        and conditions_hold(s, request.context)
    ]
    if any(s["Effect"] == "Deny" for s in matching):
        return False
    return any(s["Effect"] == "Allow" for s in matching)


def attested(pcrs: dict[str, str]) -> dict[str, str]:
    return {PCR_KEYS[i]: pcrs[f"pcr{i}"] for i in (0, 1, 2)}


def test_root_statement_excludes_decrypt_reencrypt_and_grants(synthesized: SynthesizedApp) -> None:
    root = [s for s in key_policy(synthesized) if s.get("Sid") == "AdministerButNeverDecrypt"]
    assert len(root) == 1
    assert set(as_list(root[0]["NotAction"])) == {"kms:Decrypt", "kms:ReEncrypt*", "kms:CreateGrant"}
    assert "Action" not in root[0]


def test_only_the_host_role_has_an_allow_covering_decrypt(synthesized: SynthesizedApp) -> None:
    role_id = host_role_logical_id(synthesized)
    for statement in key_policy(synthesized):
        if statement["Effect"] == "Allow" and action_matches(statement, "kms:Decrypt"):
            assert statement["Principal"]["AWS"] == {"Fn::GetAtt": [role_id, "Arn"]}, statement


def test_every_decrypt_allow_requires_all_three_pcrs_of_one_accepted_image(synthesized: SynthesizedApp) -> None:
    allows = [s for s in key_policy(synthesized) if s["Effect"] == "Allow" and action_matches(s, "kms:Decrypt")]
    assert len(allows) == len(ACCEPTED_SETS)
    required = [{PCR_KEYS[i]: pcrs[f"pcr{i}"] for i in (0, 1, 2)} for pcrs in ACCEPTED_SETS]
    found = [s["Condition"] for s in allows]
    assert all(set(condition) == {"StringEqualsIgnoreCase"} for condition in found)
    assert sorted((c["StringEqualsIgnoreCase"] for c in found), key=str) == sorted(required, key=str)


def test_each_pcr_has_its_own_deny_for_unattested_plaintext(synthesized: SynthesizedApp) -> None:
    denies = [s for s in key_policy(synthesized) if s["Effect"] == "Deny"]
    assert len(denies) == 3
    for index in (0, 1, 2):
        (deny,) = [d for d in denies if PCR_KEYS[index] in d["Condition"]["StringNotEqualsIgnoreCase"]]
        assert deny["Principal"] == {"AWS": "*"}
        assert set(as_list(deny["Action"])) == {"kms:Decrypt", "kms:ReEncrypt*", "kms:CreateGrant"}
        values = set(as_list(deny["Condition"]["StringNotEqualsIgnoreCase"][PCR_KEYS[index]]))
        assert values == {pcrs[f"pcr{index}"] for pcrs in ACCEPTED_SETS}


@pytest.mark.parametrize("pcrs", ACCEPTED_SETS)
def test_host_role_decrypts_from_an_attested_enclave(synthesized: SynthesizedApp, pcrs: dict[str, str]) -> None:
    request = Request(HOST_ROLE, "kms:Decrypt", attested(pcrs))
    assert allowed(key_policy(synthesized), host_role_logical_id(synthesized), request)


def test_host_role_cannot_decrypt_without_attestation(synthesized: SynthesizedApp) -> None:
    assert not allowed(
        key_policy(synthesized), host_role_logical_id(synthesized), Request(HOST_ROLE, "kms:Decrypt", {})
    )


def test_mixing_pcrs_of_two_accepted_images_is_refused(synthesized: SynthesizedApp) -> None:
    mixed = {PCR_KEYS[0]: CURRENT_PCRS["pcr0"], PCR_KEYS[1]: NEXT_PCRS["pcr1"], PCR_KEYS[2]: CURRENT_PCRS["pcr2"]}
    assert not allowed(
        key_policy(synthesized), host_role_logical_id(synthesized), Request(HOST_ROLE, "kms:Decrypt", mixed)
    )


def test_administrators_keep_key_management(synthesized: SynthesizedApp) -> None:
    role_id = host_role_logical_id(synthesized)
    for action in ADMIN_ACTIONS:
        assert allowed(key_policy(synthesized), role_id, Request(ROOT, action, {})), action


PCR_CHOICES = st.sampled_from([None, CURRENT_PCRS, NEXT_PCRS, {f"pcr{i}": label_pcr(f"rogue {i}") for i in (0, 1, 2)}])


@given(
    principal=st.sampled_from([HOST_ROLE, ROOT, OTHER_ROLE]),
    action=st.sampled_from(PLAINTEXT_ACTIONS),
    sources=st.tuples(PCR_CHOICES, PCR_CHOICES, PCR_CHOICES),
    upper=st.booleans(),
)
def test_plaintext_only_for_host_role_with_one_whole_accepted_pcr_set(
    synthesized: SynthesizedApp,
    principal: str,
    action: str,
    sources: tuple[dict[str, str] | None, ...],
    upper: bool,
) -> None:
    context = {}
    for index, source in enumerate(sources):
        if source is not None:
            value = source[f"pcr{index}"]
            context[PCR_KEYS[index]] = value.upper() if upper else value
    expected = (
        principal == HOST_ROLE
        and action == "kms:Decrypt"
        and any(all(sources[i] is s for i in (0, 1, 2)) for s in ACCEPTED_SETS)
    )
    request = Request(principal, action, context)
    assert allowed(key_policy(synthesized), host_role_logical_id(synthesized), request) == expected
