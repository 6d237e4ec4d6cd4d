"""``tee+zk`` steps end to end, both boundary visibilities: the head segment runs in the (simulated
NSM) enclave with its circuit's semantics AND is proven with ezkl on the same input; the third
party's verifier accepts the receipt only with both pieces of evidence about the same tensors, and
each way of breaking that is rejected with its own code."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from trustdial_verifier._internal.cli import main as verify_main

from hybrid.hybrid_setup import Published, input_file, republish, start_gateway, trustdial
from trustdial.pipeline.composite_writer import dump_composite, step_nonce
from trustdial.pipeline.errors import PipelineError
from trustdial.pipeline.run import GatewayEnclave, LocalEnclave, enclave_for, load_split, read_input, run_pipeline
from trustdial.pipeline.spec import load_spec

pytestmark = pytest.mark.slow


@dataclass
class DualRun:
    published: Published
    receipt: Path
    root: Path
    enclave: LocalEnclave | GatewayEnclave  # kept open: the enclave an operator could ask for more receipts

    def verify_args(self, receipt: Path | None = None) -> list[str | Path]:
        return self.published.verify_args(receipt or self.receipt, self.root)

    def tampered(self, edit: Callable[[dict[str, Any]], None]) -> Path:
        document = json.loads(self.receipt.read_text())
        edit(document)
        path = self.receipt.with_name(f"dual-tampered-{id(edit)}.json")
        path.write_text(json.dumps(document))
        return path


@pytest.fixture(scope="module")
def dual_private(private: Published) -> Iterator[DualRun]:
    """Through `trustdial pipeline run --gateway`: `trustdial serve --circuit head=...` behind
    `trustdial gateway`, over real sockets."""
    dual = republish(private, "dual", {"head": "tee+zk"})
    live = start_gateway(dual, circuits=("head",))
    enclave = GatewayEnclave(live.url)
    try:
        receipt = dual.root / "dual.json"
        trustdial(
            "pipeline", "run", dual.pipeline, "--split", dual.split,
            "--input", input_file(dual.root / "dual.in.json", 3),
            "--gateway", live.url, "--measurements", dual.manifest, "--output", receipt,
        )  # fmt: skip
        yield DualRun(dual, receipt, live.root_pem, enclave)
    finally:
        enclave.close()
        live.stop()


@pytest.fixture(scope="module")
def dual_public(public: Published) -> Iterator[DualRun]:
    """In process with the local (simulated NSM) enclave, as `pipeline run --local` does."""
    dual = republish(public, "dual", {"head": "tee+zk"})
    spec = load_spec(dual.pipeline)
    split = load_split(dual.split)
    signed = dual.manifest.read_bytes()
    enclave = enclave_for(split, spec.policy, signed)
    try:
        given = read_input(input_file(dual.root / "dual.in.json", 3))
        result = run_pipeline(spec, split, given, manifest_signed=signed, enclave=enclave)
        receipt, root = dual.root / "dual.json", dual.root / "dual.root.pem"
        receipt.write_bytes(dump_composite(result.receipt))
        root.write_bytes(enclave.root_pem)
        yield DualRun(dual, receipt, root, enclave)
    finally:
        enclave.close()


@pytest.fixture(params=["private", "public"])
def dual(request: pytest.FixtureRequest) -> DualRun:
    run: DualRun = request.getfixturevalue(f"dual_{request.param}")
    return run


def _verdict(capsys: pytest.CaptureFixture[str], args: list[str | Path]) -> tuple[int, dict[str, Any]]:
    status = verify_main(["receipt", *map(str, args)])
    out: dict[str, Any] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return status, out


def _reject(capsys: pytest.CaptureFixture[str], args: list[str | Path]) -> str:
    status, out = _verdict(capsys, args)
    assert status == 1 and out["valid"] is False, out
    return str(out["code"])


def _other_embedding(run: DualRun, seed: int) -> np.ndarray:
    """The body's output for another input, computed by the same enclave."""
    given = read_input(input_file(run.published.root / f"other-{seed}.in.json", seed))
    outputs, _receipt, _binding = run.enclave.infer("body", given, b"\x00" * 32, None)
    (embedding,) = outputs.values()
    return embedding


def test_dual_receipt_verifies_with_both_evidences(capsys: pytest.CaptureFixture[str], dual: DualRun) -> None:
    status, out = _verdict(capsys, dual.verify_args())
    assert status == 0, out
    assert [(s["segment"], s["mode"], s["required_mode"]) for s in out["steps"]] == [
        ("body", "tee", "tee"),
        ("head", "tee+zk", "tee+zk"),
    ]
    assert len(out["steps"][1]["proven_by"]) == 2


def test_dual_step_carries_a_receipt_and_a_proof(dual: DualRun) -> None:
    head = json.loads(dual.receipt.read_text())["steps"][1]
    assert set(head["evidence"]) == {"tee", "zk"}
    assert set(head["evidence"]["tee"]) == {"receipt", "attestation"}
    assert "instances" in head["evidence"]["zk"]["proof"]


def test_enclave_signs_the_same_public_decision_the_proof_exposes(dual: DualRun) -> None:
    # The decision the verifier reads is both the enclave's signed output (SHA-256) and the proof's
    # instances (recomputed from these bytes): it is the circuit's fixed-point result exactly.
    from trustdial_verifier._internal.proof.instances import layout_from_settings
    from trustdial_verifier._internal.proof.quantization import felts_to_floats

    document = json.loads(dual.receipt.read_text())
    record = document["tensors"]["decision"]["tensor"]
    signed = np.frombuffer(base64.b64decode(record["data"]), dtype="<f4")
    settings = json.loads((dual.published.zk_artifacts / "head" / "settings.json").read_text())
    layout = layout_from_settings(settings)
    instances = layout.output_part(document["steps"][1]["evidence"]["zk"]["proof"]["instances"][0])
    proven = np.asarray(felts_to_floats(instances, layout.output_scale), dtype=np.float32)
    np.testing.assert_array_equal(signed, proven)


def test_attack_drop_the_proof_of_a_dual_step(capsys: pytest.CaptureFixture[str], dual: DualRun) -> None:
    def edit(d: dict[str, Any]) -> None:
        del d["steps"][1]["evidence"]["zk"]

    assert _reject(capsys, dual.verify_args(dual.tampered(edit))) == "COMPOSITE_DUAL_ZK_MISSING"


def test_attack_drop_the_proof_and_relabel_the_step_tee(capsys: pytest.CaptureFixture[str], dual: DualRun) -> None:
    def edit(d: dict[str, Any]) -> None:
        del d["steps"][1]["evidence"]["zk"]
        d["steps"][1]["mode"] = "tee"

    assert _reject(capsys, dual.verify_args(dual.tampered(edit))) == "COMPOSITE_DUAL_ZK_MISSING"


def test_attack_drop_the_receipt_of_a_dual_step(capsys: pytest.CaptureFixture[str], dual: DualRun) -> None:
    def edit(d: dict[str, Any]) -> None:
        del d["steps"][1]["evidence"]["tee"]

    assert _reject(capsys, dual.verify_args(dual.tampered(edit))) == "COMPOSITE_DUAL_TEE_MISSING"


def test_attack_receipt_for_another_input(capsys: pytest.CaptureFixture[str], dual: DualRun) -> None:
    # A malicious operator asks the same enclave to sign the head on another embedding, with this
    # step's nonce: the receipt itself verifies, but it is about another tensor than the proof.
    document = json.loads(dual.receipt.read_text())
    spec = load_spec(dual.published.pipeline)
    nonce = step_nonce(spec.policy, document["request"]["nonce"], 1)
    _outputs, receipt, binding = dual.enclave.infer(
        "head", {"embedding": _other_embedding(dual, seed=9)}, bytes.fromhex(nonce), None
    )

    def edit(d: dict[str, Any]) -> None:
        d["steps"][1]["evidence"]["tee"] = {
            "receipt": base64.b64encode(receipt).decode(),
            "attestation": base64.b64encode(binding).decode(),
        }

    assert _reject(capsys, dual.verify_args(dual.tampered(edit))) == "COMPOSITE_DUAL_TEE_MISMATCH"


def test_attack_proof_for_another_input_private(
    capsys: pytest.CaptureFixture[str], dual_private: DualRun, private_run: tuple[Path, Path]
) -> None:
    # A consistent forger: the head's proof and released decision from another request (a zk-mode
    # run of the same circuit); the proof verifies, but its hashed input is not the enclave's.
    other = json.loads(private_run[0].read_text())

    def edit(d: dict[str, Any]) -> None:
        d["steps"][1]["evidence"]["zk"] = copy.deepcopy(other["steps"][1]["evidence"]["zk"])
        d["tensors"]["decision"] = copy.deepcopy(other["tensors"]["decision"])

    code = _reject(capsys, dual_private.verify_args(dual_private.tampered(edit)))
    assert code == "COMPOSITE_DUAL_ZK_MISMATCH"


def test_attack_proof_for_another_input_public(
    capsys: pytest.CaptureFixture[str], dual_public: DualRun, public_run: tuple[Path, Path]
) -> None:
    # Public boundary: the proof's instances are recomputed from the embedding bytes in the receipt.
    other = json.loads(public_run[0].read_text())

    def edit(d: dict[str, Any]) -> None:
        d["steps"][1]["evidence"]["zk"] = copy.deepcopy(other["steps"][1]["evidence"]["zk"])
        d["tensors"]["decision"] = copy.deepcopy(other["tensors"]["decision"])

    code = _reject(capsys, dual_public.verify_args(dual_public.tampered(edit)))
    assert code == "INPUT_INSTANCE_MISMATCH"


def test_run_refuses_a_dual_step_whose_enclave_runs_float_onnxruntime(dual_private: DualRun) -> None:
    # Served without its circuit (as a plain `trustdial serve --model` would), the enclave's float
    # output is not the circuit's fixed-point output: the operator gets a typed error, no receipt.
    from trustdial_verifier._internal.measurements import parse_manifest, signed_payload

    published = dual_private.published
    spec = load_spec(published.pipeline)
    split = load_split(published.split)
    signed = published.manifest.read_bytes()
    index = {"PCR0": 0, "PCR1": 1, "PCR2": 2, "PCR8": 8}
    pcrs = {index[k]: bytes.fromhex(v) for k, v in parse_manifest(signed_payload(signed)).pcrs.items() if v}
    float_enclave = LocalEnclave({"body": split.segment_files["body"], "head": split.segment_files["head"]}, pcrs)
    try:
        given = read_input(input_file(published.root / "float.in.json", 4))
        with pytest.raises(PipelineError) as caught:
            run_pipeline(spec, split, given, manifest_signed=signed, enclave=float_enclave)
    finally:
        float_enclave.close()
    assert caught.value.code == "PIPELINE_DUAL_MISMATCH"


def _text_args(run: DualRun) -> list[str]:
    return [str(a) for a in run.verify_args() if a != "--json"]


def test_text_report_has_a_row_per_piece_of_evidence_and_ends_with_the_verdict(
    capsys: pytest.CaptureFixture[str], dual_private: DualRun
) -> None:
    status = verify_main(["receipt", *_text_args(dual_private)])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    header = lines[0].split()
    assert header[:5] == ["step", "segment", "mode", "required", "evidence"]
    body, head_tee, head_zk = lines[2], lines[3], lines[4]
    assert body.split()[:5] == ["0", "body", "tee", "tee", "tee"]
    assert head_tee.split()[:5] == ["1", "head", "tee+zk", "tee+zk", "tee"]
    assert head_zk.split()[0] == "zk" and "proof" in head_zk
    assert lines[-1].startswith("VALID: composite receipt of pipeline 'reference-decision', 2 steps verified")


def test_text_report_states_cost_and_evidence_size_per_step(
    capsys: pytest.CaptureFixture[str], dual_private: DualRun
) -> None:
    verify_main(["receipt", *_text_args(dual_private)])
    lines = capsys.readouterr().out.splitlines()
    document = json.loads(dual_private.receipt.read_text())
    zk_bytes = len(json.dumps(document["steps"][1]["evidence"]["zk"]["proof"]))
    assert lines[4].rstrip().endswith(f"{zk_bytes / 1024:.1f} KiB")
    seconds = document["steps"][1]["cost"]["seconds"]
    assert f"{seconds:.2f} s" in lines[3] or f"{seconds * 1000:.1f} ms" in lines[3]


def test_json_report_keeps_its_fields(capsys: pytest.CaptureFixture[str], dual_private: DualRun) -> None:
    status, out = _verdict(capsys, dual_private.verify_args())
    assert status == 0
    assert set(out) == {
        "valid", "kind", "pipeline", "policy_sha256", "manifest_sha256", "request_nonce", "outputs", "steps",
    }  # fmt: skip
    assert set(out["steps"][1]) == {
        "index", "segment", "mode", "required_mode", "reason", "proven_by", "seconds", "evidence_bytes",
    }  # fmt: skip


def test_text_report_of_a_rejected_receipt_is_one_verdict_line(
    capsys: pytest.CaptureFixture[str], dual_private: DualRun
) -> None:
    def edit(d: dict[str, Any]) -> None:
        del d["steps"][1]["evidence"]["zk"]

    args = [str(a) for a in dual_private.verify_args(dual_private.tampered(edit)) if a != "--json"]
    status = verify_main(["receipt", *args])
    out = capsys.readouterr().out.splitlines()
    assert status == 1
    assert len(out) == 1 and out[0].startswith("REJECTED [COMPOSITE_DUAL_ZK_MISSING]")
