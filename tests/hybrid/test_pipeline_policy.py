"""pipeline.toml: strict schema, canonical hash, and the mode strength order."""

from __future__ import annotations

import hashlib

import pytest
from trustdial_verifier._internal.composite.errors import PolicyFileError
from trustdial_verifier._internal.composite.policy import mode_satisfies, parse_policy, policy_sha256

from trustdial.pipeline.reference_pipeline import reference_pipeline_toml

MINIMAL = """
format = "trustdial.pipeline/1"
name = "p"
[[segments]]
name = "a"
inputs = ["x"]
outputs = ["y"]
mode = "tee"
reason = "r"
[tensors]
x = "public"
y = "private"
"""


def _code(text: str) -> str:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(text.encode())
    return caught.value.code


def test_reference_pipeline_parses_with_two_segments_in_order() -> None:
    policy = parse_policy(reference_pipeline_toml("private").encode())
    assert [(s.name, s.mode) for s in policy.segments] == [("body", "tee"), ("head", "zk")]
    assert policy.pipeline_inputs == ("input",)
    assert policy.pipeline_outputs == ("decision",)


def test_policy_hash_is_sha256_of_the_documented_canonical_json() -> None:
    canonical = (
        '{"format":"trustdial.pipeline/1","name":"p","segments":[{"inputs":["x"],"mode":"tee","name":"a",'
        '"outputs":["y"],"reason":"r"}],"tensors":{"x":"public","y":"private"}}'
    )
    assert policy_sha256(parse_policy(MINIMAL.encode())) == hashlib.sha256(canonical.encode()).hexdigest()


def test_policy_hash_ignores_comments_and_layout() -> None:
    reformatted = "# comment\n" + MINIMAL.replace('name = "p"', 'name   =   "p"  # same') + "\n\n"
    assert policy_sha256(parse_policy(reformatted.encode())) == policy_sha256(parse_policy(MINIMAL.encode()))


def test_policy_hash_ignores_the_model_path() -> None:
    with_model = MINIMAL.replace('name = "p"', 'name = "p"\nmodel = "elsewhere/m.onnx"', 1)
    assert policy_sha256(parse_policy(with_model.encode())) == policy_sha256(parse_policy(MINIMAL.encode()))


def test_policy_hash_changes_when_a_mode_changes() -> None:
    changed = MINIMAL.replace('mode = "tee"', 'mode = "zk"')
    assert policy_sha256(parse_policy(changed.encode())) != policy_sha256(parse_policy(MINIMAL.encode()))


def test_policy_hash_changes_when_a_visibility_changes() -> None:
    changed = MINIMAL.replace('y = "private"', 'y = "public"')
    assert policy_sha256(parse_policy(changed.encode())) != policy_sha256(parse_policy(MINIMAL.encode()))


def test_invalid_toml_is_refused() -> None:
    assert _code("format = ") == "POLICY_TOML_INVALID"


def test_unknown_format_is_refused() -> None:
    assert _code(MINIMAL.replace("trustdial.pipeline/1", "trustdial.pipeline/9")) == "POLICY_FORMAT_UNKNOWN"


def test_unknown_top_level_key_is_refused() -> None:
    assert _code("extra = 1\n" + MINIMAL) == "POLICY_FIELD_UNKNOWN"


def test_unknown_segment_key_is_refused() -> None:
    assert _code(MINIMAL.replace('reason = "r"', 'reason = "r"\nmod = "zk"')) == "POLICY_FIELD_UNKNOWN"


def test_missing_reason_is_refused() -> None:
    assert _code(MINIMAL.replace('reason = "r"\n', "")) == "POLICY_FIELD_MISSING"


def test_blank_reason_is_refused() -> None:
    assert _code(MINIMAL.replace('reason = "r"', 'reason = "  "')) == "POLICY_REASON_MISSING"


def test_unknown_mode_is_refused() -> None:
    assert _code(MINIMAL.replace('mode = "tee"', 'mode = "trust-me"')) == "POLICY_MODE_UNKNOWN"


def test_mode_of_the_wrong_type_is_refused() -> None:
    assert _code(MINIMAL.replace('mode = "tee"', 'mode = ["tee"]')) == "POLICY_MODE_UNKNOWN"


def test_no_segments_is_refused() -> None:
    text = 'format = "trustdial.pipeline/1"\nname = "p"\nsegments = []\n[tensors]\n'
    assert _code(text) == "POLICY_NO_SEGMENTS"


def test_tensor_without_visibility_is_refused() -> None:
    assert _code(MINIMAL.replace('y = "private"\n', "")) == "POLICY_VISIBILITY_MISSING"


def test_unknown_visibility_is_refused() -> None:
    assert _code(MINIMAL.replace('y = "private"', 'y = "hashed"')) == "POLICY_VISIBILITY_UNKNOWN"


def test_visibility_for_an_unused_tensor_is_refused() -> None:
    assert _code(MINIMAL + 'z = "public"\n') == "POLICY_FIELD_UNKNOWN"


def test_duplicate_segment_names_are_refused() -> None:
    second = '[[segments]]\nname = "a"\ninputs = ["y"]\noutputs = ["z"]\nmode = "zk"\nreason = "r"\n'
    text = MINIMAL.replace("[tensors]", second + "[tensors]") + 'z = "public"\n'
    assert _code(text) == "POLICY_SEGMENT_DUPLICATE"


def test_tensor_consumed_before_it_is_produced_is_refused() -> None:
    first = '[[segments]]\nname = "b"\ninputs = ["y"]\noutputs = ["z"]\nmode = "zk"\nreason = "r"\n'
    text = MINIMAL.replace("[[segments]]", first + "[[segments]]", 1) + 'z = "public"\n'
    assert _code(text) == "POLICY_TENSOR_ORDER"


def test_tensor_produced_twice_is_refused() -> None:
    second = '[[segments]]\nname = "b"\ninputs = ["x"]\noutputs = ["y"]\nmode = "zk"\nreason = "r"\n'
    assert _code(MINIMAL.replace("[tensors]", second + "[tensors]")) == "POLICY_TENSOR_REPRODUCED"


def test_segment_name_with_spaces_is_refused() -> None:
    assert _code(MINIMAL.replace('name = "a"', 'name = "a b"')) == "POLICY_NAME_INVALID"


@pytest.mark.parametrize(
    ("actual", "required", "allowed"),
    [
        ("tee", "tee", True),
        ("zk", "zk", True),
        ("tee+zk", "tee+zk", True),
        ("zk", "tee", True),
        ("tee+zk", "zk", True),
        ("tee+zk", "tee", True),
        ("tee", "zk", False),
        ("tee", "tee+zk", False),
        ("zk", "tee+zk", False),
        ("none", "tee", False),
        ("tee", "none", False),
    ],
)
def test_mode_order_allows_only_equal_or_stronger(actual: str, required: str, allowed: bool) -> None:
    assert mode_satisfies(actual, required) is allowed
