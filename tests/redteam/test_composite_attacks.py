"""Red team, round 2: attacks on composite (hybrid) receipts by someone holding a genuine one.

Two levels, like tests/hybrid: attacks on the *verified facts* (``hybrid.composite_fixtures``: each
piece of step evidence already verified, only the composition is attacked), and attacks on real
evidence (simulated-NSM enclave receipts and real ezkl proofs of the session's published reference
pipeline, ``private`` / ``private_run`` in tests/conftest.py). Each attack must be rejected with
its stable code; none of these duplicates tests/hybrid/test_composite_links.py or
test_composite_e2e.py.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hybrid.composite_fixtures import Scenario, build, h
from trustdial_verifier._internal.cli import main as verify_main
from trustdial_verifier._internal.composite.errors import CompositeError
from trustdial_verifier._internal.composite.links import check_links
from trustdial_verifier._internal.composite.options import ChainOptions
from trustdial_verifier._internal.composite.receipt import MAX_STEPS, Commitment, parse_receipt
from trustdial_verifier._internal.composite.structure import check_structure, trusted_policy
from trustdial_verifier._internal.tensors import Tensor, commit_tensors

# --- attacks on the verified facts ------------------------------------------------------------


def _verify_facts(s: Scenario) -> None:
    receipt = parse_receipt(json.dumps(s.document).encode())
    pinned = trusted_policy(receipt, s.policy, s.manifest)
    check_structure(receipt, pinned, s.manifest)
    check_links(receipt, pinned, s.manifest, s.facts, ChainOptions())


def _code(s: Scenario) -> str:
    with pytest.raises(CompositeError) as caught:
        _verify_facts(s)
    return caught.value.code


def test_genuine_facts_pass() -> None:
    _verify_facts(build())


@pytest.mark.parametrize(
    ("policy", "code"),
    [
        ({}, "COMPOSITE_POLICY_INVALID"),
        (
            {"format": "trustdial.pipeline/1", "name": "reference-decision", "segments": [], "tensors": {}},
            "COMPOSITE_POLICY_INVALID",
        ),
        (None, "COMPOSITE_MALFORMED"),
        ([], "COMPOSITE_MALFORMED"),
    ],
)
def test_embedded_policy_that_is_empty_or_not_an_object_checks_nothing_and_is_refused(policy: Any, code: str) -> None:
    # A policy with no segments would make every step "unknown" and every check vacuous; even with
    # its hash recomputed it is refused before any step is looked at.
    scenario = build()
    scenario.document["policy"] = policy
    with pytest.raises(CompositeError) as caught:
        receipt = parse_receipt(json.dumps(scenario.document).encode())
        trusted_policy(receipt, None, scenario.manifest)
    assert caught.value.code == code


def test_more_steps_than_the_cap_are_malformed_before_any_evidence_is_read() -> None:
    scenario = build()
    scenario.document["steps"] = [scenario.document["steps"][0]] * (MAX_STEPS + 1)
    with pytest.raises(CompositeError) as caught:
        parse_receipt(json.dumps(scenario.document).encode())
    assert caught.value.code == "COMPOSITE_MALFORMED"


def test_public_tensor_declaring_a_huge_shape_over_few_bytes_is_malformed() -> None:
    # 8 dimensions of 2**31 - 1: the element count is computed, never allocated.
    scenario = build()
    scenario.document["tensors"]["decision"]["tensor"]["shape"] = [2**31 - 1] * 8
    with pytest.raises(CompositeError) as caught:
        parse_receipt(json.dumps(scenario.document).encode())
    assert caught.value.code == "COMPOSITE_MALFORMED"


def test_poseidon_hash_presented_as_the_sha256_commitment_is_rejected() -> None:
    # Kind confusion: the boundary record moves the embedding's Poseidon value into its SHA-256 slot.
    scenario = build()
    record = scenario.document["tensors"]["embedding"]["commitment"]
    record["sha256"] = record["poseidon"]
    assert _code(scenario) == "COMPOSITE_OUTPUT_LINK_MISMATCH"


def test_private_link_whose_producer_and_consumer_share_no_commitment_kind_is_rejected() -> None:
    # The enclave signed only the embedding's SHA-256 (the operator asked for no Poseidon hash); the
    # head's proof is about another embedding. The record states the enclave's SHA-256 and the
    # proof's Poseidon hash, so each piece agrees with the record, and nothing links the two.
    scenario = build()
    sha = scenario.facts[0]["tee"].outputs["embedding"].sha256
    other = h("poseidon of another request's embedding")
    scenario.edit_fact(0, "tee", outputs={"embedding": Commitment(sha256=sha)})
    scenario.edit_fact(1, "zk", inputs={"embedding": Commitment(poseidon=other)})
    scenario.document["tensors"]["embedding"]["commitment"] = {"sha256": sha, "poseidon": other}
    scenario.document["steps"][0]["outputs"]["embedding"] = {"sha256": sha}
    scenario.document["steps"][1]["inputs"]["embedding"] = {"poseidon": other}
    assert _code(scenario) == "COMPOSITE_LINK_UNPROVEN"


FAN_OUT_POLICY = """format = "trustdial.pipeline/1"
name = "reference-decision"
[[segments]]
name = "body"
inputs = ["input"]
outputs = ["embedding"]
mode = "tee"
reason = "features"
[[segments]]
name = "head"
inputs = ["embedding"]
outputs = ["decision"]
mode = "zk"
reason = "decision"
[[segments]]
name = "audit"
inputs = ["embedding"]
outputs = ["flag"]
mode = "tee"
reason = "audit"
[tensors]
input = "private"
embedding = "private"
decision = "public"
flag = "public"
"""


@pytest.fixture
def fan_out(monkeypatch: pytest.MonkeyPatch) -> Scenario:
    """The embedding consumed twice: by the zk head (its Poseidon hash) and by a tee audit step whose
    enclave signs only its SHA-256; the body's enclave signed both, which links all three."""
    import hybrid.composite_fixtures as fixtures

    monkeypatch.setattr(fixtures, "policy_text", lambda *_args: FAN_OUT_POLICY)
    scenario = build(modes=("tee", "zk", "tee"))
    sha = scenario.facts[2]["tee"].inputs["embedding"].sha256
    scenario.edit_fact(2, "tee", inputs={"embedding": Commitment(sha256=sha)})
    scenario.document["steps"][2]["inputs"]["embedding"] = {"sha256": sha}
    return scenario


def test_tensor_consumed_by_two_steps_is_linked_through_the_producer_that_proved_both_kinds(fan_out: Scenario) -> None:
    _verify_facts(fan_out)


def test_tensor_consumed_by_two_steps_without_a_producer_proving_both_kinds_is_rejected(fan_out: Scenario) -> None:
    sha = fan_out.facts[0]["tee"].outputs["embedding"].sha256
    fan_out.edit_fact(0, "tee", outputs={"embedding": Commitment(sha256=sha)})
    fan_out.document["steps"][0]["outputs"]["embedding"] = {"sha256": sha}
    assert _code(fan_out) == "COMPOSITE_LINK_UNPROVEN"


@pytest.mark.parametrize("signed_scales", [{"embedding": 6}, {}], ids=["another scale", "no scale signed"])
def test_private_link_by_poseidon_hashes_of_felts_at_another_scale_is_rejected(signed_scales: dict[str, int]) -> None:
    # Equal Poseidon hashes are equal felts; the enclave quantized at one scale, the circuit reads them
    # at another (the fixtures' circuits quantize at 7), i.e. it computed on other values.
    scenario = build()
    scenario.edit_fact(0, "tee", poseidon_scales=signed_scales)
    assert _code(scenario) == "COMPOSITE_LINK_SCALE_MISMATCH"


def test_scale_an_enclave_executing_a_circuit_signs_is_not_what_links_its_step() -> None:
    # A tee+zk enclave hashes at its pinned circuit's scales whatever poseidon_scale the request
    # carried: its step's proof reports the scale. Here the head's enclave proves the embedding by
    # its Poseidon hash alone, so every link into the head goes through a Poseidon hash.
    scenario = build(modes=("tee", "tee+zk"))
    poseidon = scenario.facts[1]["tee"].inputs["embedding"].poseidon
    scenario.edit_fact(1, "tee", inputs={"embedding": Commitment(poseidon=poseidon)}, poseidon_scales={"embedding": 3})
    # the step states what its evidence now proves: a SHA-256 nothing in the step proves would be refused
    # on its own (COMPOSITE_COMMITMENT_UNPROVEN)
    scenario.document["steps"][1]["inputs"]["embedding"].pop("sha256", None)
    _verify_facts(scenario)  # its own (signed) scale 3 is not taken: the circuit's, 7, is
    scenario.edit_fact(1, "zk", poseidon_scales={"embedding": 3, "decision": 7})
    assert _code(scenario) == "COMPOSITE_LINK_SCALE_MISMATCH"


def test_maximum_age_on_a_receipt_with_no_enclave_step_is_not_vacuously_met() -> None:
    # Only enclave receipts carry a time; with every step proven in zk, --max-age checked nothing.
    from hybrid.composite_fixtures import ATTESTED_AT_MS

    options = ChainOptions(at_ms=ATTESTED_AT_MS + 86_400_000, max_age_s=60)
    scenario = build(modes=("zk", "zk"))
    receipt = parse_receipt(json.dumps(scenario.document).encode())
    pinned = trusted_policy(receipt, scenario.policy, scenario.manifest)
    check_structure(receipt, pinned, scenario.manifest)
    with pytest.raises(CompositeError) as caught:
        check_links(receipt, pinned, scenario.manifest, scenario.facts, options)
    assert caught.value.code == "COMPOSITE_RECEIPT_UNDATED"


def test_an_expected_nonce_needs_an_enclave_step_to_have_signed_it() -> None:
    # Proofs sign no nonce: with every step in zk, the request nonce is only what the document states.
    options = ChainOptions(request_nonce=h("request-1"))
    for modes, code in ((("zk", "zk"), "COMPOSITE_NONCE_UNBOUND"), (("tee", "zk"), None)):
        scenario = build(modes=modes)
        receipt = parse_receipt(json.dumps(scenario.document).encode())
        pinned = trusted_policy(receipt, scenario.policy, scenario.manifest)
        check_structure(receipt, pinned, scenario.manifest)
        if code is None:
            check_links(receipt, pinned, scenario.manifest, scenario.facts, options)
            continue
        with pytest.raises(CompositeError) as caught:
            check_links(receipt, pinned, scenario.manifest, scenario.facts, options)
        assert caught.value.code == code


def test_an_expected_nonce_refuses_the_receipt_of_another_request() -> None:
    scenario = build(nonce=h("an earlier request"))
    receipt = parse_receipt(json.dumps(scenario.document).encode())
    pinned = trusted_policy(receipt, scenario.policy, scenario.manifest)
    with pytest.raises(CompositeError) as caught:
        check_links(receipt, pinned, scenario.manifest, scenario.facts, ChainOptions(request_nonce=h("request-1")))
    assert caught.value.code == "COMPOSITE_NONCE_MISMATCH"


def test_policy_given_to_the_verifier_does_not_void_the_manifests_policy_pin() -> None:
    # The signed manifest pins the deployment's policy; a receipt under another policy, checked with
    # --policy naming that other policy (e.g. a file the operator handed over), was accepted.
    from dataclasses import replace

    scenario = build()
    scenario.manifest = replace(scenario.manifest, policy_sha256s=frozenset({h("the published policy")}))
    assert _code(scenario) == "COMPOSITE_POLICY_UNPINNED"


# --- attacks on real evidence -------------------------------------------------------------------


def _verify(args: list[str | Path], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    status = verify_main(["receipt", *map(str, args)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    result: dict[str, Any] = json.loads(lines[0])
    return status, result


def _rejected(args: list[str | Path], capsys: pytest.CaptureFixture[str]) -> str:
    status, result = _verify(args, capsys)
    assert (status, result["valid"]) == (1, False), result
    return str(result["code"])


def _tampered(run: tuple[Path, Path], name: str, edit: Callable[[dict[str, Any]], None]) -> Path:
    document = json.loads(run[0].read_text())
    edit(document)
    path = run[0].with_name(f"redteam2-{name}.json")
    path.write_text(json.dumps(document))
    return path


def _set_public(document: dict[str, Any], name: str, dtype: str, shape: list[int], data: bytes) -> None:
    """Replace a public tensor's values and restate every commitment to it (record and steps)."""
    record = document["tensors"][name]
    record["tensor"] = {"dtype": dtype, "shape": shape, "data": base64.b64encode(data).decode()}
    digest = commit_tensors({name: Tensor(dtype, tuple(shape), data)}).hex()
    record["commitment"]["sha256"] = digest
    for step in document["steps"]:
        for side in ("inputs", "outputs"):
            if name in step[side]:
                step[side][name]["sha256"] = digest


def _decision(run: tuple[Path, Path]) -> list[float]:
    record = json.loads(run[0].read_text())["tensors"]["decision"]["tensor"]
    assert record["dtype"] == "float32" and record["shape"] == [1, 2]
    return list(struct.unpack("<2f", base64.b64decode(record["data"])))


@pytest.mark.slow
def test_genuine_receipt_verifies(
    private: Any, private_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    status, result = _verify(private.verify_args(*private_run), capsys)
    assert (status, result["valid"]) == (0, True), result


@pytest.mark.slow
def test_empty_public_decision_is_rejected(
    private: Any, private_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # An empty tensor has no values to quantize: refused as a document before any proof is read.
    receipt = _tampered(private_run, "empty", lambda d: _set_public(d, "decision", "float32", [1, 0], b""))
    assert _rejected(private.verify_args(receipt, private_run[1]), capsys) == "COMPOSITE_MALFORMED"


def _nudged(values: list[float], dtype: str) -> tuple[str, list[int], bytes]:
    # Each logit moved by a quarter of the head's quantization step (2**-13): the same felts.
    moved = [values[0] + 2**-15, values[1] - 2**-15]
    return dtype, [1, 2], struct.pack(f"<2{'f' if dtype == 'float32' else 'd'}", *moved)


@pytest.mark.slow
@pytest.mark.parametrize(
    "relabel",
    [
        pytest.param(lambda v: _nudged(v, "float32"), id="nudged within the quantization step"),
        pytest.param(lambda v: _nudged(v, "float64"), id="nudged as float64"),
        pytest.param(lambda v: ("float32", [2, 1], struct.pack("<2f", *v)), id="shape 2x1"),
        pytest.param(lambda v: ("float32", [2], struct.pack("<2f", *v)), id="shape 2"),
    ],
)
def test_public_decision_other_than_the_proven_one_but_quantizing_to_its_instances_is_rejected(
    relabel: Callable[[list[float]], tuple[str, list[int], bytes]],
    private: Any,
    private_run: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The proof's public instances are the felts of the decision; values that merely round to them
    # (or the same values under another shape) are not what the circuit computed: released outputs
    # could be moved across a decision threshold by up to half a quantization step.
    dtype, shape, data = relabel(_decision(private_run))
    receipt = _tampered(
        private_run, f"decision-{dtype}-{shape}", lambda d: _set_public(d, "decision", dtype, shape, data)
    )
    assert _rejected(private.verify_args(receipt, private_run[1]), capsys) == "OUTPUT_INSTANCE_MISMATCH"


@pytest.mark.slow
def test_public_decision_as_integers_is_malformed(
    private: Any, private_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # dtype confusion: the same element count as int32; a proof's instances are quantized floats.
    values = _decision(private_run)
    data = struct.pack("<2i", *(round(v) for v in values))
    receipt = _tampered(private_run, "int32", lambda d: _set_public(d, "decision", "int32", [1, 2], data))
    assert _rejected(private.verify_args(receipt, private_run[1]), capsys) == "COMPOSITE_MALFORMED"


class _OperatorEnclave:
    """The genuine (simulated) enclave, driven by a dishonest operator: ``tamper`` receives the real
    enclave, the request, and returns (values handed on to the next step, values the enclave
    signed, receipt, binding document)."""

    def __init__(self, inner: Any, tamper: Callable[..., tuple[dict[str, Any], dict[str, Any], bytes, bytes]]) -> None:
        self.inner, self.tamper = inner, tamper
        self.signed: dict[str, Any] = {}

    def infer(self, model: str, inputs: Any, nonce: bytes, poseidon_scale: int | None) -> tuple[Any, bytes, bytes]:
        handed_on, self.signed, receipt, binding = self.tamper(self.inner, model, inputs, nonce, poseidon_scale)
        return handed_on, receipt, binding

    def close(self) -> None:
        self.inner.close()


def _operator_run(published: Any, name: str, tamper: Callable[..., Any]) -> tuple[Path, Path]:
    """One inference of the published private pipeline through ``_OperatorEnclave``; the receipt then
    restates the embedding's SHA-256 as the enclave signed it (what a forger must do). Returns the
    receipt and the simulated enclave's root."""
    import numpy as np

    from trustdial.pipeline.run import enclave_for, load_split, run_pipeline
    from trustdial.pipeline.spec import load_spec

    spec, split = load_spec(published.pipeline), load_split(published.split)
    signed = published.manifest.read_bytes()
    enclave = enclave_for(split, spec.policy, signed)
    operator = _OperatorEnclave(enclave, tamper)
    x = np.random.default_rng(11).random((1, 784), dtype=np.float32)
    try:
        result = run_pipeline(spec, split, {"input": x}, manifest_signed=signed, enclave=operator)  # type: ignore[arg-type]
    finally:
        operator.close()
    document = result.receipt
    signed_sha = commit_tensors({"embedding": Tensor.from_array(operator.signed["embedding"])}).hex()
    document["tensors"]["embedding"]["commitment"]["sha256"] = signed_sha
    document["steps"][0]["outputs"]["embedding"]["sha256"] = signed_sha
    receipt, root = published.root / f"redteam2-{name}.json", published.root / f"redteam2-{name}.root.pem"
    receipt.write_text(json.dumps(document))
    root.write_bytes(enclave.root_pem)
    return receipt, root


@pytest.mark.slow
def test_embedding_of_another_request_spliced_under_an_enclave_receipt_without_poseidon_is_rejected(
    private: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # The operator asks the enclave for no Poseidon hash (it signs the embedding's SHA-256 only), then
    # proves the head on the embedding of *another* input. Verified as is, the receipt would say
    # "this input gave this decision" with the decision of the other input.
    import numpy as np

    other = {"input": np.random.default_rng(12).random((1, 784), dtype=np.float32)}

    def tamper(enclave: Any, model: str, inputs: Any, nonce: bytes, scale: int | None) -> Any:
        signed, receipt, binding = enclave.infer(model, inputs, nonce, None)
        spliced, _receipt, _binding = enclave.infer(model, other, nonce, None)
        return spliced, signed, receipt, binding

    receipt, root = _operator_run(private, "no-poseidon", tamper)
    assert _rejected(private.verify_args(receipt, root), capsys) == "COMPOSITE_LINK_UNPROVEN"


@pytest.mark.slow
def test_embedding_hashed_by_the_enclave_at_another_scale_than_the_circuits_is_rejected(
    private: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # The operator asks the enclave for the Poseidon hash one scale below the head's input scale and
    # proves the head on half the embedding: the same felts, so the same hash. The head's decision
    # is then the decision for half this input's embedding.
    import numpy as np

    def tamper(enclave: Any, model: str, inputs: Any, nonce: bytes, scale: int | None) -> Any:
        assert scale is not None
        signed, receipt, binding = enclave.infer(model, inputs, nonce, scale - 1)
        halved = {name: (value / 2).astype(np.float32) for name, value in signed.items()}
        return halved, signed, receipt, binding

    receipt, root = _operator_run(private, "half-scale", tamper)
    assert _rejected(private.verify_args(receipt, root), capsys) == "COMPOSITE_LINK_SCALE_MISMATCH"


@pytest.mark.slow
def test_public_decision_too_large_to_quantize_is_a_rejection_not_an_io_error(
    private: Any, private_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # ezkl raises OSError("Failed to quantize input") for 1e300: it reached the CLI as IO_ERROR (exit 2)
    # and escaped verify_composite as an untyped exception.
    data = struct.pack("<2d", 1e300, 0.0)
    receipt = _tampered(private_run, "huge", lambda d: _set_public(d, "decision", "float64", [1, 2], data))
    assert _rejected(private.verify_args(receipt, private_run[1]), capsys) == "OUTPUT_INSTANCE_MISMATCH"


@pytest.mark.slow
def test_public_decision_retyped_as_float64_with_the_same_values_is_rejected(
    private: Any, private_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # The exact proven values, re-typed: they dequantize to the same felts and pack back exactly under
    # "d", so only the dtype the pinned settings fix (F32) tells this is not the tensor the circuit computed.
    values = _decision(private_run)
    data = struct.pack("<2d", *values)
    receipt = _tampered(private_run, "retyped", lambda d: _set_public(d, "decision", "float64", [1, 2], data))
    assert _rejected(private.verify_args(receipt, private_run[1]), capsys) == "OUTPUT_INSTANCE_MISMATCH"
