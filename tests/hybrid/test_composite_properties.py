"""Property tests: whatever bytes or mutated documents arrive, the composite verifier answers
with its own error type (or accepts an unchanged document), never with another exception."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from trustdial_verifier._internal.composite.errors import CompositeError
from trustdial_verifier._internal.composite.links import check_links
from trustdial_verifier._internal.composite.options import ChainOptions
from trustdial_verifier._internal.composite.receipt import parse_receipt
from trustdial_verifier._internal.composite.structure import check_structure, trusted_policy

from hybrid.composite_fixtures import build

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=80),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _check(document: Any) -> None:
    scenario = build()
    receipt = parse_receipt(json.dumps(document).encode())
    policy = trusted_policy(receipt, scenario.policy, scenario.manifest)
    check_structure(receipt, policy, scenario.manifest)
    check_links(receipt, policy, scenario.manifest, scenario.facts, ChainOptions())


@settings(max_examples=300)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_raise_only_composite_errors(data: bytes) -> None:
    try:
        parse_receipt(data)
    except CompositeError:
        return


@settings(max_examples=400)
@given(st.data())
def test_a_mutated_value_is_rejected_with_a_composite_error(data: st.DataObject) -> None:
    document = build().document
    paths = [p for p in _paths(document) if p]
    path = data.draw(st.sampled_from(paths))
    replacement = data.draw(JSON_VALUES)
    target = document
    for key in path[:-1]:
        target = target[key]
    if target[path[-1]] == replacement:
        return
    target[path[-1]] = replacement
    try:
        _check(document)
    except CompositeError:
        return
    # Accepting is only possible for fields no check at this level covers (the free-text cost record;
    # evidence bytes, which the evidence checkers verify: see test_composite_e2e.py), or for dropping
    # one of two commitment kinds while the other still links every piece of evidence.
    dropped_kind = replacement is None and path[-1] in ("sha256", "poseidon")
    assert "cost" in path or "evidence" in path or dropped_kind, path


def test_non_ascii_tensor_data_is_a_composite_error_not_a_value_error() -> None:
    """Regression (found by the property test above): base64 of non-ASCII text raised ValueError."""
    document = build().document
    document["tensors"]["decision"]["tensor"]["data"] = "\x80"
    try:
        _check(document)
    except CompositeError as err:
        assert err.code == "COMPOSITE_MALFORMED"
    else:
        raise AssertionError("accepted non-ASCII base64")
