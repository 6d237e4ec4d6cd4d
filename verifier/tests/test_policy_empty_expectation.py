"""Equality policies refuse an empty expected value at construction (it would bind to nothing)."""

from __future__ import annotations

import pytest
from trustdial_verifier._internal.attestation.policy import NonceEquals, PublicKeyEquals, UserDataEquals
from trustdial_verifier.errors import InputError


@pytest.mark.parametrize("policy", [NonceEquals, UserDataEquals, PublicKeyEquals])
def test_empty_expected_value_is_refused_at_construction(policy: type) -> None:
    with pytest.raises(InputError) as caught:
        policy(b"")
    assert caught.value.code == "EMPTY_EXPECTATION"


@pytest.mark.parametrize("policy", [NonceEquals, UserDataEquals, PublicKeyEquals])
def test_non_empty_expected_value_is_kept(policy: type) -> None:
    assert next(iter(vars(policy(b"\x00")).values())) == b"\x00"
