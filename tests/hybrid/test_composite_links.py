"""Composite receipts, link and policy layer: a consistent receipt passes; every attack an
adversary can make on the composition (with step evidence that itself verifies) is rejected
with its own stable code. End-to-end attacks on real evidence live in test_composite_e2e.py."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import replace

import pytest
from trustdial_verifier._internal.composite.errors import CompositeError
from trustdial_verifier._internal.composite.links import check_links
from trustdial_verifier._internal.composite.nonce import derive_step_nonce
from trustdial_verifier._internal.composite.options import ChainOptions
from trustdial_verifier._internal.composite.policy import PipelinePolicy, canonical_policy, parse_policy, policy_sha256
from trustdial_verifier._internal.composite.receipt import Commitment, TensorData, parse_receipt
from trustdial_verifier._internal.composite.structure import check_structure, trusted_policy
from trustdial_verifier._internal.composite.tensor_commitment import tensor_sha256
from trustdial_verifier._internal.composite.verify import verify_composite

from hybrid.composite_fixtures import ATTESTED_AT_MS, Scenario, build, h, policy_text


def run(
    s: Scenario, *, policy: PipelinePolicy | str | None = "given", options: ChainOptions | None = None
) -> list[str]:
    receipt = parse_receipt(json.dumps(s.document).encode())
    given = s.policy if policy == "given" else policy
    assert not isinstance(given, str)
    pinned = trusted_policy(receipt, given, s.manifest)
    check_structure(receipt, pinned, s.manifest)
    reports = check_links(receipt, pinned, s.manifest, s.facts, options or ChainOptions())
    return [f"{r.segment}:{r.mode}" for r in reports]


def rejected(s: Scenario, **kwargs: object) -> str:
    with pytest.raises(CompositeError) as caught:
        run(s, **kwargs)  # type: ignore[arg-type]
    return caught.value.code


@pytest.mark.parametrize("boundary", ["private", "public"])
def test_consistent_receipt_passes(boundary: str) -> None:
    assert run(build(boundary=boundary)) == ["body:tee", "head:zk"]


def test_consistent_tee_plus_zk_receipt_passes() -> None:
    assert run(build(modes=("tee", "tee+zk"))) == ["body:tee", "head:tee+zk"]


def test_tensor_commitment_is_sha256_of_the_receipts_canonical_encoding() -> None:
    # docs/receipts.md section 2: MAGIC, u32 count, u32 len(name), name, u8 len(dtype), dtype, u32 ndim, dims, data
    data = struct.pack("<2f", 1.5, -2.0)
    tensor = TensorData(dtype="float32", shape=(1, 2), data=data)
    encoding = (
        b"trustdial/tensors/v1\x00" + struct.pack(">I", 1)
        + struct.pack(">I", 9) + b"embedding"
        + struct.pack(">B", 7) + b"float32"
        + struct.pack(">IQQ", 2, 1, 2)
        + struct.pack(">Q", 8) + data
    )  # fmt: skip
    assert tensor_sha256("embedding", tensor) == hashlib.sha256(encoding).hexdigest()


def test_step_nonce_is_sha256_of_the_documented_derivation() -> None:
    material = (
        b"trustdial.composite-step/1\x00" + bytes.fromhex(h("r")) + bytes.fromhex(h("p")) + b"\x00\x00\x00\x01head"
    )
    assert derive_step_nonce(h("r"), h("p"), 1, "head") == hashlib.sha256(material).hexdigest()


# --- attacks, one code each -------------------------------------------------------------------


def _swap_output(s: Scenario) -> None:
    # The body's output is replaced by another tensor and the head is proven on that one.
    forged = Commitment(sha256=h("other"), poseidon=h("other-poseidon"))
    s.document["tensors"]["embedding"]["commitment"] = {"sha256": forged.sha256, "poseidon": forged.poseidon}
    s.document["steps"][1]["inputs"]["embedding"] = {"poseidon": forged.poseidon}
    s.edit_fact(1, "zk", inputs={"embedding": Commitment(poseidon=forged.poseidon)})


def _proof_for_another_input(s: Scenario) -> None:
    other = h("another-embedding")
    s.document["steps"][1]["inputs"]["embedding"] = {"poseidon": other}
    s.edit_fact(1, "zk", inputs={"embedding": Commitment(poseidon=other)})


def _reorder(s: Scenario) -> None:
    steps = s.document["steps"]
    steps.reverse()
    for position, step in enumerate(steps):
        step["index"] = position
    s.facts.reverse()


def _renumber(s: Scenario) -> None:
    s.document["steps"][0]["index"], s.document["steps"][1]["index"] = 1, 0


def _drop(s: Scenario) -> None:
    del s.document["steps"][1]
    del s.facts[1]


def _duplicate(s: Scenario) -> None:
    s.document["steps"].append(json.loads(json.dumps(s.document["steps"][1])))
    s.facts.append(dict(s.facts[1]))


def _unknown_segment(s: Scenario) -> None:
    s.document["steps"][1]["segment"] = "bonus"


def _replay_tee_from_another_request(s: Scenario) -> None:
    # The body's receipt was signed for another request; the attacker re-derives the step nonces.
    s.edit_fact(0, "tee", nonce=derive_step_nonce(h("request-0"), s.document["policy_sha256"], 0, "body"))


def _rebind_request_without_nonces(s: Scenario) -> None:
    s.document["request"]["nonce"] = h("request-2")


def _rebind_request(s: Scenario) -> None:
    s.document["request"]["nonce"] = h("request-2")
    for step in s.document["steps"]:
        step["step_nonce"] = derive_step_nonce(
            h("request-2"), s.document["policy_sha256"], step["index"], step["segment"]
        )


def _downgrade(s: Scenario) -> None:
    # The head ran in the enclave instead of being proven.
    step = s.document["steps"][1]
    step["mode"] = "tee"
    step["evidence"] = {"tee": {"opaque": "tee"}}
    step["inputs"]["embedding"] = s.document["tensors"]["embedding"]["commitment"]


def _mode_without_evidence(s: Scenario) -> None:
    # The head claims zk but carries only enclave evidence.
    s.document["steps"][1]["evidence"] = {"tee": {"opaque": "tee"}}


def _changed_policy(s: Scenario) -> None:
    changed = parse_policy(policy_text(("tee", "tee")).encode())
    s.document["policy"] = canonical_policy(changed)
    s.document["policy_sha256"] = policy_sha256(changed)


def _edited_policy_keeping_hash(s: Scenario) -> None:
    s.document["policy"]["segments"][1]["mode"] = "tee"


def _other_manifest(s: Scenario) -> None:
    s.document["manifest_sha256"] = h("manifest of another build")


def _stale_attestation(s: Scenario) -> None:
    s.edit_fact(0, "tee", attested_at_ms=ATTESTED_AT_MS - 4 * 3600 * 1000)


def _other_model(s: Scenario) -> None:
    s.edit_fact(0, "tee", model_sha256=h("model:another"))


def _other_vk(s: Scenario) -> None:
    s.edit_fact(1, "zk", vk_sha256=h("vk:another"))


def _leak_private(s: Scenario) -> None:
    data = base64.b64encode(b"\x00" * 16).decode()
    s.document["tensors"]["embedding"]["tensor"] = {"dtype": "float32", "shape": [1, 4], "data": data}


def _edit_public_values(s: Scenario) -> None:
    record = s.document["tensors"]["decision"]["tensor"]
    raw = bytearray(base64.b64decode(record["data"]))
    raw[0] ^= 1
    record["data"] = base64.b64encode(bytes(raw)).decode()


def _stated_commitment_differs(s: Scenario) -> None:
    s.document["steps"][0]["outputs"]["embedding"] = {"sha256": h("x"), "poseidon": h("y")}


def _pipeline_renamed(s: Scenario) -> None:
    s.document["pipeline"] = "another-pipeline"


def _step_nonce_reused_across_steps(s: Scenario) -> None:
    s.document["steps"][1]["step_nonce"] = s.document["steps"][0]["step_nonce"]


def _missing_boundary_record(s: Scenario) -> None:
    del s.document["tensors"]["embedding"]


def _step_tensor_renamed(s: Scenario) -> None:
    s.document["steps"][1]["outputs"] = {"verdict": s.document["steps"][1]["outputs"]["decision"]}


ATTACKS: dict[str, tuple[Callable[[Scenario], None], str]] = {
    "swap a step's output": (_swap_output, "COMPOSITE_OUTPUT_LINK_MISMATCH"),
    "proof for another input": (_proof_for_another_input, "COMPOSITE_INPUT_LINK_MISMATCH"),
    "reorder steps": (_reorder, "COMPOSITE_STEP_ORDER"),
    "renumber steps": (_renumber, "COMPOSITE_STEP_INDEX"),
    "drop a step": (_drop, "COMPOSITE_STEP_MISSING"),
    "duplicate a step": (_duplicate, "COMPOSITE_STEP_DUPLICATE"),
    "add a step for an unknown segment": (_unknown_segment, "COMPOSITE_SEGMENT_UNKNOWN"),
    "replay a tee receipt from another request": (_replay_tee_from_another_request, "COMPOSITE_TEE_REPLAY"),
    "move the receipt to another request": (_rebind_request, "COMPOSITE_TEE_REPLAY"),
    "change the request nonce only": (_rebind_request_without_nonces, "COMPOSITE_STEP_NONCE_INVALID"),
    "reuse a step nonce across steps": (_step_nonce_reused_across_steps, "COMPOSITE_STEP_NONCE_INVALID"),
    "downgrade zk to tee": (_downgrade, "COMPOSITE_MODE_DOWNGRADE"),
    "drop a mode's evidence": (_mode_without_evidence, "COMPOSITE_EVIDENCE_MISSING"),
    "change the policy": (_changed_policy, "COMPOSITE_POLICY_MISMATCH"),
    "edit the embedded policy": (_edited_policy_keeping_hash, "COMPOSITE_POLICY_HASH_MISMATCH"),
    "manifest from another build": (_other_manifest, "COMPOSITE_MANIFEST_MISMATCH"),
    "stale attestation": (_stale_attestation, "COMPOSITE_ATTESTATION_STALE"),
    "enclave ran another model": (_other_model, "COMPOSITE_MODEL_MISMATCH"),
    "proof under a vk from another model": (_other_vk, "COMPOSITE_VK_MISMATCH"),
    "publish a private tensor": (_leak_private, "COMPOSITE_VISIBILITY_MISMATCH"),
    "edit a public tensor's values": (_edit_public_values, "COMPOSITE_TENSOR_COMMITMENT_MISMATCH"),
    "state a commitment the evidence does not prove": (
        _stated_commitment_differs,
        "COMPOSITE_STEP_COMMITMENT_MISMATCH",
    ),
    "rename the pipeline": (_pipeline_renamed, "COMPOSITE_PIPELINE_MISMATCH"),
    "drop a boundary record": (_missing_boundary_record, "COMPOSITE_TENSOR_SET"),
    "rename a step's tensor": (_step_tensor_renamed, "COMPOSITE_STEP_TENSORS"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_is_rejected_with_its_code(attack: str) -> None:
    mutate, code = ATTACKS[attack]
    scenario = build()
    mutate(scenario)
    assert rejected(scenario) == code


def test_attacks_cover_at_least_fifteen_distinct_codes() -> None:
    assert len({code for _mutate, code in ATTACKS.values()}) >= 15


def test_dual_step_whose_proof_is_about_another_input_is_rejected() -> None:
    scenario = build(modes=("tee", "tee+zk"))
    other = h("a different embedding")
    scenario.edit_fact(1, "zk", inputs={"embedding": Commitment(poseidon=other)})
    assert rejected(scenario) == "COMPOSITE_DUAL_ZK_MISMATCH"


def test_dual_step_whose_receipt_is_about_another_input_is_rejected() -> None:
    scenario = build(modes=("tee", "tee+zk"))
    scenario.edit_fact(1, "tee", inputs={"embedding": Commitment(sha256=h("other sha"), poseidon=h("other poseidon"))})
    assert rejected(scenario) == "COMPOSITE_DUAL_TEE_MISMATCH"


@pytest.mark.parametrize("boundary", ["private", "public"])
def test_dual_step_whose_receipt_is_about_another_output_is_rejected(boundary: str) -> None:
    scenario = build(modes=("tee", "tee+zk"), boundary=boundary)
    scenario.edit_fact(1, "tee", outputs={"decision": Commitment(sha256=h("another decision"))})
    assert rejected(scenario) == "COMPOSITE_DUAL_TEE_MISMATCH"


def test_dual_evidence_sharing_no_commitment_kind_is_rejected() -> None:
    # The enclave signs only the SHA-256 of the private embedding, the proof only its Poseidon hash:
    # each agrees with the boundary record, but nothing shows they are the same tensor.
    scenario = build(modes=("tee", "tee+zk"))
    sha = scenario.facts[1]["tee"].inputs["embedding"].sha256
    scenario.edit_fact(1, "tee", inputs={"embedding": Commitment(sha256=sha)})
    assert rejected(scenario) == "COMPOSITE_DUAL_EVIDENCE_MISMATCH"


def test_dual_step_whose_enclave_executed_another_circuit_is_rejected() -> None:
    scenario = build(modes=("tee", "tee+zk"))
    scenario.edit_fact(1, "tee", executed_circuit_sha256=h("circuit:some other head"))
    assert rejected(scenario) == "COMPOSITE_DUAL_CIRCUIT_MISMATCH"


def test_dual_step_whose_enclave_ran_the_float_model_is_rejected() -> None:
    # An enclave that ran the ONNX model with onnxruntime signs no circuit at all.
    scenario = build(modes=("tee", "tee+zk"))
    scenario.edit_fact(1, "tee", executed_circuit_sha256=None)
    assert rejected(scenario) == "COMPOSITE_DUAL_CIRCUIT_MISMATCH"


def test_dual_step_without_a_manifest_circuit_pin_is_rejected() -> None:
    scenario = build(modes=("tee", "tee+zk"))
    head = scenario.manifest.segments["head"]
    segments = {**scenario.manifest.segments, "head": replace(head, zk_pins={})}
    scenario.manifest = replace(scenario.manifest, segments=segments)
    assert rejected(scenario) == "COMPOSITE_DUAL_CIRCUIT_MISMATCH"


def test_dual_step_without_its_proof_is_a_downgrade() -> None:
    scenario = build(modes=("tee", "tee+zk"))
    del scenario.document["steps"][1]["evidence"]["zk"]
    del scenario.facts[1]["zk"]
    assert rejected(scenario) == "COMPOSITE_DUAL_ZK_MISSING"


def test_dual_step_relabelled_tee_without_its_proof_is_a_downgrade() -> None:
    scenario = build(modes=("tee", "tee+zk"))
    scenario.document["steps"][1]["mode"] = "tee"
    del scenario.document["steps"][1]["evidence"]["zk"]
    del scenario.facts[1]["zk"]
    assert rejected(scenario) == "COMPOSITE_DUAL_ZK_MISSING"


def test_dual_step_without_its_receipt_is_a_downgrade() -> None:
    scenario = build(modes=("tee", "tee+zk"))
    scenario.document["steps"][1]["mode"] = "zk"
    del scenario.document["steps"][1]["evidence"]["tee"]
    del scenario.facts[1]["tee"]
    assert rejected(scenario) == "COMPOSITE_DUAL_TEE_MISSING"


def test_tee_steps_signed_out_of_order_are_rejected() -> None:
    scenario = build(modes=("tee", "tee"))
    scenario.edit_fact(1, "tee", issued_at_ms=ATTESTED_AT_MS + 10)
    assert rejected(scenario) == "COMPOSITE_STEP_TIME_ORDER"


def test_inference_older_than_the_maximum_age_is_rejected() -> None:
    options = ChainOptions(at_ms=ATTESTED_AT_MS + 3_600_000, max_age_s=60)
    assert rejected(build(), options=options) == "COMPOSITE_RECEIPT_STALE"


def test_inference_signed_after_the_verification_time_is_rejected() -> None:
    options = ChainOptions(at_ms=ATTESTED_AT_MS - 60_000, max_age_s=60)
    assert rejected(build(), options=options) == "COMPOSITE_RECEIPT_FUTURE"


def test_inference_within_the_maximum_age_passes() -> None:
    options = ChainOptions(at_ms=ATTESTED_AT_MS + 30_000, max_age_s=60)
    assert run(build(), options=options) == ["body:tee", "head:zk"]


def test_segment_missing_from_the_manifest_is_rejected() -> None:
    scenario = build()
    segments = dict(scenario.manifest.segments)
    del segments["head"]
    scenario.manifest = type(scenario.manifest)(sha256=scenario.manifest.sha256, segments=segments)
    assert rejected(scenario) == "COMPOSITE_SEGMENT_UNMEASURED"


def test_receipt_without_a_given_or_pinned_policy_is_refused() -> None:
    assert rejected(build(), policy=None) == "COMPOSITE_POLICY_UNPINNED"


def test_receipt_with_a_policy_pinned_by_the_manifest_passes_without_one_given() -> None:
    scenario = build()
    scenario.manifest = type(scenario.manifest)(
        sha256=scenario.manifest.sha256,
        segments=scenario.manifest.segments,
        policy_sha256s=frozenset({policy_sha256(scenario.policy)}),
    )
    assert run(scenario, policy=None) == ["body:tee", "head:zk"]


def test_upgrade_from_tee_to_zk_is_accepted() -> None:
    scenario = build(modes=("tee", "zk"))
    upgraded = build(modes=("tee", "tee+zk"))
    # The policy asked only for zk on the head; the operator also ran it attested.
    upgraded.policy = scenario.policy
    upgraded.document["policy"] = scenario.document["policy"]
    upgraded.document["policy_sha256"] = scenario.document["policy_sha256"]
    for step in upgraded.document["steps"]:
        step["step_nonce"] = derive_step_nonce(
            step_nonce_request(upgraded), scenario.document["policy_sha256"], step["index"], step["segment"]
        )
    for index, facts in enumerate(upgraded.facts):
        if "tee" in facts:
            upgraded.edit_fact(index, "tee", nonce=upgraded.document["steps"][index]["step_nonce"])
    assert run(upgraded) == ["body:tee", "head:tee+zk"]


def step_nonce_request(s: Scenario) -> str:
    return str(s.document["request"]["nonce"])


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda d: d.update(format="trustdial.composite-receipt/0"), "COMPOSITE_FORMAT_UNKNOWN"),
        (lambda d: d.update(extra=1), "COMPOSITE_MALFORMED"),
        (lambda d: d["steps"][0].update(index=True), "COMPOSITE_MALFORMED"),
        (lambda d: d["steps"][0]["evidence"].update(sgx={}), "COMPOSITE_MALFORMED"),
        (lambda d: d["request"].update(nonce="ABCD"), "COMPOSITE_MALFORMED"),
        (lambda d: d["tensors"]["decision"]["tensor"].update(data="!!"), "COMPOSITE_MALFORMED"),
        (lambda d: d["tensors"]["decision"]["tensor"].update(shape=[1, 5]), "COMPOSITE_MALFORMED"),
    ],
)
def test_malformed_receipt_is_rejected_before_any_check(mutate: Callable[[dict[str, object]], None], code: str) -> None:
    scenario = build()
    mutate(scenario.document)
    with pytest.raises(CompositeError) as caught:
        parse_receipt(json.dumps(scenario.document).encode())
    assert caught.value.code == code


def test_duplicate_json_keys_are_rejected() -> None:
    text = json.dumps(build().document)
    duplicated = text.replace('"pipeline":', '"pipeline": "x", "pipeline":', 1)
    with pytest.raises(CompositeError) as caught:
        parse_receipt(duplicated.encode())
    assert caught.value.code == "COMPOSITE_MALFORMED"


def test_entry_point_refuses_evidence_it_has_no_checker_for() -> None:
    scenario = build()
    with pytest.raises(CompositeError) as caught:
        verify_composite(
            json.dumps(scenario.document).encode(), manifest=scenario.manifest, policy=scenario.policy, checkers={}
        )
    assert caught.value.code == "COMPOSITE_EVIDENCE_UNSUPPORTED"
