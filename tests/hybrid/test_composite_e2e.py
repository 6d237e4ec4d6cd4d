"""Hybrid pipelines end to end, both boundary visibilities: the operator's commands produce a
composite receipt from a real (simulated-NSM) enclave step and a real ezkl proof, the third
party's `trustdial-verify receipt` accepts it, and every attack on the real evidence is
rejected with its own code."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from trustdial_verifier._internal.cli import main as verify_main

from hybrid.hybrid_setup import Published, input_file, start_gateway, trustdial, verify

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def private_second_run(private: Published) -> tuple[Path, Path]:
    """A second request, through `trustdial gateway` + `trustdial serve` over real sockets."""
    live = start_gateway(private)
    try:
        receipt = private.root / "second.json"
        trustdial(
            "pipeline", "run", private.pipeline, "--split", private.split,
            "--input", input_file(private.root / "second.in.json", 2),
            "--gateway", live.url, "--measurements", private.manifest, "--output", receipt,
        )  # fmt: skip
    finally:
        live.stop()
    return receipt, live.root_pem


def _verified(published: Published, run: tuple[Path, Path]) -> dict[str, Any]:
    done = verify(*published.verify_args(*run))
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_private_boundary_receipt_verifies(private: Published, private_run: tuple[Path, Path]) -> None:
    report = _verified(private, private_run)
    assert [(s["segment"], s["mode"]) for s in report["steps"]] == [("body", "tee"), ("head", "zk")]


def test_public_boundary_receipt_verifies(public: Published, public_run: tuple[Path, Path]) -> None:
    report = _verified(public, public_run)
    assert [(s["segment"], s["mode"]) for s in report["steps"]] == [("body", "tee"), ("head", "zk")]


def test_private_boundary_receipt_carries_no_embedding_values(private_run: tuple[Path, Path]) -> None:
    record = json.loads(private_run[0].read_text())["tensors"]["embedding"]
    assert record["tensor"] is None
    assert set(record["commitment"]) == {"sha256", "poseidon"}


def test_public_boundary_receipt_carries_the_embedding_values(public_run: tuple[Path, Path]) -> None:
    record = json.loads(public_run[0].read_text())["tensors"]["embedding"]
    assert record["tensor"]["shape"] == [1, 32]


def test_verified_decision_matches_the_full_model_within_quantization(
    private: Published, private_run: tuple[Path, Path]
) -> None:
    report = _verified(private, private_run)
    given = json.loads((private.root / "first.in.json").read_text())["input"]
    import base64

    x = np.frombuffer(base64.b64decode(given["data"]), dtype="<f4").reshape(1, 784)
    full = ort.InferenceSession(str(private.pipeline.parent / "reference.onnx"), providers=["CPUExecutionProvider"])
    (expected,) = full.run(None, {"input": x})
    np.testing.assert_allclose(report["outputs"]["decision"], expected.ravel(), atol=0.02)


@pytest.mark.parametrize("boundary", ["private", "public"])
def test_split_pins_the_tuned_zk_artifacts_it_wrote(boundary: str, request: pytest.FixtureRequest) -> None:
    published: Published = request.getfixturevalue(boundary)
    (head,) = json.loads((published.split / "split.json").read_text())["zk"]
    directory = published.split / head["artifacts"]
    settings = json.loads((directory / "settings.json").read_text())["run_args"]
    assert head["tuned"] is True and head["tolerance"] == 1e-3
    assert head["decomposition"] == [settings["decomp_base"], settings["decomp_legs"]]
    on_disk = {
        "vk_sha256": "vk.key",
        "settings_sha256": "settings.json",
        "compiled_sha256": "network.compiled",
        "srs_sha256": "kzg.srs",
    }
    for field, name in on_disk.items():
        assert head["manifest"][field] == hashlib.sha256((directory / name).read_bytes()).hexdigest(), field


def test_public_boundary_decision_matches_the_full_model_within_quantization(
    public: Published, public_run: tuple[Path, Path]
) -> None:
    report = _verified(public, public_run)
    given = json.loads((public.root / "first.in.json").read_text())["input"]
    x = np.frombuffer(base64.b64decode(given["data"]), dtype="<f4").reshape(1, 784)
    full = ort.InferenceSession(str(public.pipeline.parent / "reference.onnx"), providers=["CPUExecutionProvider"])
    (expected,) = full.run(None, {"input": x})
    np.testing.assert_allclose(report["outputs"]["decision"], expected.ravel(), atol=0.02)


# --- attacks on real evidence ----------------------------------------------------------------


def _reject(capsys: pytest.CaptureFixture[str], args: list[str | Path]) -> str:
    status = verify_main(["receipt", *map(str, args)])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status in (1, 2), out
    assert out["valid"] is False
    return str(out["code"])


def _tampered(published: Published, run: tuple[Path, Path], edit: Callable[[dict[str, Any]], None]) -> Path:
    document = json.loads(run[0].read_text())
    edit(document)
    path = run[0].with_name(f"tampered-{id(edit)}.json")
    path.write_text(json.dumps(document))
    return path


def _args(published: Published, receipt: Path, root: Path, **changes: Path | None) -> list[str | Path]:
    args = published.verify_args(receipt, root)
    for flag, value in changes.items():
        position = args.index(f"--{flag.replace('_', '-')}")
        if value is None:
            del args[position : position + 2]
        else:
            args[position + 1] = value
    return args


def test_attack_swap_the_body_output(
    capsys: pytest.CaptureFixture[str], private: Published, private_run: tuple[Path, Path]
) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["tensors"]["embedding"]["commitment"]["poseidon"] = "01" + "00" * 31

    assert (
        _reject(capsys, _args(private, _tampered(private, private_run, edit), private_run[1]))
        == "COMPOSITE_OUTPUT_LINK_MISMATCH"
    )


def test_attack_proof_for_another_input(
    capsys: pytest.CaptureFixture[str],
    private: Published,
    private_run: tuple[Path, Path],
    private_second_run: tuple[Path, Path],
) -> None:
    second = json.loads(private_second_run[0].read_text())
    other = second["steps"][1]

    def edit(d: dict[str, Any]) -> None:
        # A consistent forger: the head's proof, stated commitments and released decision all come
        # from another request; only the link to this request's enclave-signed embedding breaks.
        d["steps"][1]["evidence"] = other["evidence"]
        d["steps"][1]["inputs"] = other["inputs"]
        d["steps"][1]["outputs"] = other["outputs"]
        d["tensors"]["decision"] = second["tensors"]["decision"]

    assert (
        _reject(capsys, _args(private, _tampered(private, private_run, edit), private_run[1]))
        == "COMPOSITE_INPUT_LINK_MISMATCH"
    )


def test_attack_replay_a_tee_receipt_from_another_request(
    capsys: pytest.CaptureFixture[str],
    private: Published,
    private_run: tuple[Path, Path],
    private_second_run: tuple[Path, Path],
) -> None:
    other = json.loads(private_second_run[0].read_text())["steps"][0]

    def edit(d: dict[str, Any]) -> None:
        d["steps"][0]["evidence"] = other["evidence"]

    # The replayed receipt's enclave chains to the same simulator root only in its own run.
    code = _reject(capsys, _args(private, _tampered(private, private_run, edit), private_second_run[1]))
    assert code == "COMPOSITE_TEE_REPLAY"


def test_attack_reorder_steps(
    capsys: pytest.CaptureFixture[str], private: Published, private_run: tuple[Path, Path]
) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["steps"].reverse()

    assert (
        _reject(capsys, _args(private, _tampered(private, private_run, edit), private_run[1])) == "COMPOSITE_STEP_ORDER"
    )


def test_attack_drop_the_zk_step(
    capsys: pytest.CaptureFixture[str], private: Published, private_run: tuple[Path, Path]
) -> None:
    def edit(d: dict[str, Any]) -> None:
        del d["steps"][1]

    assert (
        _reject(capsys, _args(private, _tampered(private, private_run, edit), private_run[1]))
        == "COMPOSITE_STEP_MISSING"
    )


def test_attack_downgrade_zk_to_tee(
    capsys: pytest.CaptureFixture[str], private: Published, private_run: tuple[Path, Path]
) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["steps"][1]["mode"] = "tee"
        d["steps"][1]["evidence"] = copy.deepcopy(d["steps"][0]["evidence"])

    assert (
        _reject(capsys, _args(private, _tampered(private, private_run, edit), private_run[1]))
        == "COMPOSITE_MODE_DOWNGRADE"
    )


def test_attack_change_the_policy(
    capsys: pytest.CaptureFixture[str], private: Published, private_run: tuple[Path, Path]
) -> None:
    weaker = private.root / "weaker.toml"
    weaker.write_text(private.pipeline.read_text().replace('mode = "zk"', 'mode = "tee"'))
    assert _reject(capsys, _args(private, private_run[0], private_run[1], policy=weaker)) == "COMPOSITE_POLICY_MISMATCH"


def test_attack_manifest_from_another_build(
    capsys: pytest.CaptureFixture[str], private: Published, public: Published, private_run: tuple[Path, Path]
) -> None:
    args = _args(
        private, private_run[0], private_run[1], measurements=public.manifest, manifest_key=public.manifest_key
    )
    assert _reject(capsys, args) == "COMPOSITE_MANIFEST_MISMATCH"


def test_attack_stale_attestation(
    capsys: pytest.CaptureFixture[str], private: Published, private_run: tuple[Path, Path]
) -> None:
    args = [*_args(private, private_run[0], private_run[1]), "--max-attestation-age", "0"]
    assert _reject(capsys, args) == "COMPOSITE_ATTESTATION_STALE"


def test_attack_vk_from_another_model(
    capsys: pytest.CaptureFixture[str], private: Published, public: Published, private_run: tuple[Path, Path]
) -> None:
    args = _args(private, private_run[0], private_run[1], zk_artifacts=public.zk_artifacts)
    assert _reject(capsys, args) == "PINNED_HASH_MISMATCH"


def test_attack_flip_a_byte_of_the_tee_receipt(
    capsys: pytest.CaptureFixture[str], private: Published, private_run: tuple[Path, Path]
) -> None:
    import base64

    def edit(d: dict[str, Any]) -> None:
        raw = bytearray(base64.b64decode(d["steps"][0]["evidence"]["tee"]["receipt"]))
        raw[-5] ^= 0x01
        d["steps"][0]["evidence"]["tee"]["receipt"] = base64.b64encode(bytes(raw)).decode()

    assert _reject(capsys, _args(private, _tampered(private, private_run, edit), private_run[1])).startswith("RECEIPT_")


def test_attack_edit_a_proof_instance(
    capsys: pytest.CaptureFixture[str], private: Published, private_run: tuple[Path, Path]
) -> None:
    def edit(d: dict[str, Any]) -> None:
        instances = d["steps"][1]["evidence"]["zk"]["proof"]["instances"][0]
        instances[-1] = "02" + instances[-1][2:]

    code = _reject(capsys, _args(private, _tampered(private, private_run, edit), private_run[1]))
    assert code == "PROOF_INVALID"


def test_attack_dev_srs_without_the_flag(
    capsys: pytest.CaptureFixture[str], private: Published, private_run: tuple[Path, Path]
) -> None:
    args = [a for a in _args(private, private_run[0], private_run[1]) if a != "--allow-dev-srs"]
    assert _reject(capsys, args) == "DEV_SRS_REFUSED"


def test_attack_enclave_not_under_the_pinned_root(
    capsys: pytest.CaptureFixture[str],
    private: Published,
    private_run: tuple[Path, Path],
    private_second_run: tuple[Path, Path],
) -> None:
    # Another simulator's root: the binding document does not chain to it.
    assert _reject(capsys, _args(private, private_run[0], private_second_run[1])) == "CHAIN_ROOT_MISMATCH"


def test_attack_edit_the_public_decision(
    capsys: pytest.CaptureFixture[str], public: Published, public_run: tuple[Path, Path]
) -> None:
    import base64

    def edit(d: dict[str, Any]) -> None:
        record = d["tensors"]["decision"]["tensor"]
        raw = bytearray(base64.b64decode(record["data"]))
        raw[0] ^= 0x40
        record["data"] = base64.b64encode(bytes(raw)).decode()

    code = _reject(capsys, _args(public, _tampered(public, public_run, edit), public_run[1]))
    assert code == "COMPOSITE_TENSOR_COMMITMENT_MISMATCH"


def test_attack_swap_the_public_embedding_values_the_proof_was_not_about(
    capsys: pytest.CaptureFixture[str], public: Published, public_run: tuple[Path, Path]
) -> None:
    import base64

    from trustdial_verifier._internal.tensors import Tensor, commit_tensors

    def edit(d: dict[str, Any]) -> None:
        record = d["tensors"]["embedding"]
        raw = bytearray(base64.b64decode(record["tensor"]["data"]))
        raw[0:4] = np.float32(3.0).tobytes()
        record["tensor"]["data"] = base64.b64encode(bytes(raw)).decode()
        digest = commit_tensors({"embedding": Tensor("float32", (1, 32), bytes(raw))}).hex()
        record["commitment"]["sha256"] = digest

    # The proof's public instances are recomputed from the receipt's bytes: they no longer match.
    code = _reject(capsys, _args(public, _tampered(public, public_run, edit), public_run[1]))
    assert code == "INPUT_INSTANCE_MISMATCH"


def test_receipt_through_the_gateway_and_enclave_server_verifies(
    private: Published, private_second_run: tuple[Path, Path]
) -> None:
    report = _verified(private, private_second_run)
    assert [(s["segment"], s["mode"]) for s in report["steps"]] == [("body", "tee"), ("head", "zk")]


def test_private_head_circuit_fits_2_to_the_11_rows(private: Published) -> None:
    # The reference model's 32-value embedding keeps the Poseidon hash of the private boundary
    # (41 rows per value in ezkl 23.0.5) small: a wider cut would push the head to logrows 12+.
    (head,) = json.loads((private.split / "split.json").read_text())["zk"]
    settings = json.loads((private.split / head["artifacts"] / "settings.json").read_text())
    assert head["logrows"] == settings["run_args"]["logrows"] <= 11
    assert settings["num_rows"] >= 41 * 32  # the hash of all 32 boundary values is in the circuit


@pytest.mark.parametrize("how", ["--local", "--gateway"])
def test_run_under_a_manifest_that_is_not_signed_is_a_typed_error(
    private: Published, how: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pipeline run` exits 2 with the manifest's code (docs/pipeline.md: any error, exit 2, nothing written)."""
    from trustdial.cli import main

    bare = tmp_path / "manifest.json"
    bare.write_text(json.dumps({"schema": "trustdial.measurements/v1"}))
    receipt = tmp_path / "never.json"
    target = ["--local"] if how == "--local" else ["--gateway", "http://127.0.0.1:1"]
    status = main(
        [
            "pipeline", "run", str(private.pipeline), "--split", str(private.split),
            "--input", str(input_file(tmp_path / "in.json", 3)), *target,
            "--measurements", str(bare), "--output", str(receipt), "--json",
        ]
    )  # fmt: skip
    assert status == 2
    assert json.loads(capsys.readouterr().out)["code"] == "MANIFEST_NOT_SIGNED"
    assert not receipt.exists()


def test_publish_dev_into_an_unwritable_path_exits_2(
    private: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from trustdial.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    argv = ["pipeline", "publish-dev", str(private.pipeline), "--split", str(private.split)]
    argv += ["--output", str(blocker / "pub")]
    assert main(argv) == 2
    assert "error [IO_ERROR]" in capsys.readouterr().err
