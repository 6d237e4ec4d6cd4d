"""Attacks on how attestation policies are composed: a policy must check the same thing on every call."""

from __future__ import annotations

import pytest
from redteam_support import SIM_TIME, fixed_nsm
from trustdial_verifier._internal.attestation.verify import (
    AllOf,
    AnyOf,
    AttestationError,
    PcrsEqual,
    verify_attestation,
)
from trustdial_verifier.errors import InputError

WRONG_PCR0 = PcrsEqual({0: b"\x11" * 48})


def _code(document: bytes, policy: object, nsm: object) -> str:
    with pytest.raises(AttestationError) as caught:
        verify_attestation(document, policy, root=nsm.root_certificate, at=SIM_TIME)  # type: ignore[arg-type, attr-defined]
    return caught.value.code


def test_all_of_built_from_a_generator_still_checks_on_the_second_document() -> None:
    nsm = fixed_nsm()
    policy = AllOf(p for p in [WRONG_PCR0])  # type: ignore[arg-type]
    assert _code(nsm.attest(), policy, nsm) == "PCR_MISMATCH"
    assert _code(nsm.attest(), policy, nsm) == "PCR_MISMATCH"


def test_all_of_an_empty_iterator_is_refused() -> None:
    nsm = fixed_nsm()
    assert _code(nsm.attest(), AllOf(iter([])), nsm) == "POLICY_EMPTY"  # type: ignore[arg-type]


def test_any_of_built_from_a_generator_still_checks_on_the_second_document() -> None:
    nsm = fixed_nsm()
    policy = AnyOf(p for p in [WRONG_PCR0])  # type: ignore[arg-type]
    assert _code(nsm.attest(), policy, nsm) == "POLICY_NONE_MATCHED"
    assert _code(nsm.attest(), policy, nsm) == "POLICY_NONE_MATCHED"


def test_all_of_does_not_follow_later_mutation_of_the_callers_list() -> None:
    nsm = fixed_nsm()
    policies = [WRONG_PCR0]
    policy = AllOf(policies)
    policies.clear()
    assert _code(nsm.attest(), policy, nsm) == "PCR_MISMATCH"


@pytest.mark.parametrize("child", [None, "PCR0", b"\x00" * 48], ids=["none", "text", "bytes"])
def test_all_of_with_a_child_that_is_not_a_policy_is_an_input_error(child: object) -> None:
    with pytest.raises(InputError) as caught:
        AllOf([WRONG_PCR0, child])  # type: ignore[list-item]
    assert caught.value.code == "POLICY_TYPE"


def test_none_policy_inside_receipt_binding_is_a_typed_error_not_a_crash() -> None:
    from trustdial_verifier._internal.receipts.attested import verify_binding_document

    nsm = fixed_nsm()
    with pytest.raises(InputError):
        verify_binding_document(nsm.attest(), None, root=nsm.root_certificate)  # type: ignore[arg-type]
