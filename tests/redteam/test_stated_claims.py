"""Red team, issue 15: every claim is checked or refused. A signed fact is never replaced by an unsigned
one, a commitment a step states beside the proven one is checked, names are matched in full."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hybrid.composite_fixtures import build, policy_text
from hybrid.test_composite_links import rejected, run
from redteam_support import MODEL_SHA256, ReceiptEnclave, write_infer_evidence
from trustdial_verifier._internal.cli import main
from trustdial_verifier._internal.composite.errors import PolicyFileError
from trustdial_verifier._internal.composite.policy import parse_policy

from infra.measurements.create import create_manifest
from infra.measurements.signers import LocalKeySigner
from infra.measurements.signing import sign_manifest

DATA = Path(__file__).resolve().parent.parent / "data"


def _signed_manifest(directory: Path) -> tuple[Path, Path]:
    """A genuinely signed manifest for kat1.rust.eif (PCRs unlike the simulated enclave's) naming the model."""
    private = ec.generate_private_key(ec.SECP384R1())
    signer = LocalKeySigner(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    manifest = create_manifest(
        eif=DATA / "eif" / "kat1.rust.eif",
        source_revision="0" * 40,
        build_time="2026-11-26T00:00:00Z",
        blobs={"kernel": "ab" * 32},
        models={"m": {"sha256": MODEL_SHA256.hex()}},
    )
    signed, key = directory / "manifest.cose", directory / "manifest-key.pem"
    signed.write_bytes(sign_manifest(manifest, signer))
    key.write_bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return signed, key


@pytest.mark.parametrize(
    "override",
    [["--pcrs", "PCRS"], ["--pcr", "PCR0"], ["--model-sha256", MODEL_SHA256.hex()]],
    ids=["pcr-file", "pcr-flag", "model-flag"],
)
def test_unsigned_pcrs_or_models_beside_a_signed_manifest_are_refused(
    override: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: the unsigned --pcrs file overrode the manifest's PCRs, so a receipt from an enclave running
    # any image verified "against the signed manifest".
    enclave = ReceiptEnclave()
    evidence = write_infer_evidence(enclave, tmp_path)
    manifest, key = _signed_manifest(tmp_path)
    values = {"PCRS": str(evidence["pcrs"]), "PCR0": f"0={enclave.pcrs[0].hex()}"}
    extra = [values.get(item, item) for item in override]
    argv = [
        "receipt",
        str(evidence["response"]),
        "--request",
        str(evidence["request"]),
        "--root",
        str(evidence["root"]),
    ]
    argv += ["--measurements", str(manifest), "--manifest-key", str(key), *extra, "--json"]
    status = main(argv)
    result = json.loads(capsys.readouterr().out)
    assert (status, result["valid"], result["code"]) == (2, False, "FLAG_NOT_APPLICABLE"), result


def test_the_signed_manifest_alone_decides_the_pcrs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The same evidence against the signed manifest only: its PCRs are kat1's, not the enclave's.
    evidence = write_infer_evidence(ReceiptEnclave(), tmp_path)
    manifest, key = _signed_manifest(tmp_path)
    argv = [
        "receipt",
        str(evidence["response"]),
        "--request",
        str(evidence["request"]),
        "--root",
        str(evidence["root"]),
    ]
    status = main([*argv, "--measurements", str(manifest), "--manifest-key", str(key), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert (status, result["valid"], result["code"]) == (1, False, "PCR_MISMATCH"), result


def test_a_zk_step_stating_a_sha256_beside_the_proven_poseidon_is_rejected() -> None:
    # The head (zk) proves only the Poseidon hash of its private input; a SHA-256 stated beside it agreed
    # with nothing and was accepted because one shared kind sufficed.
    scenario = build(modes=("tee", "zk"), boundary="private")
    assert run(scenario) == ["body:tee", "head:zk"]
    step = scenario.document["steps"][1]
    assert set(step["inputs"]["embedding"]) == {"poseidon"}
    step["inputs"]["embedding"]["sha256"] = "ab" * 32
    assert rejected(scenario) == "COMPOSITE_COMMITMENT_UNPROVEN"


def test_a_boundary_record_stating_an_unproven_kind_is_rejected() -> None:
    # The public decision is proven by its SHA-256 only (a public zk output has no Poseidon instance).
    scenario = build(modes=("tee", "zk"), boundary="private")
    record = scenario.document["tensors"]["decision"]["commitment"]
    assert set(record) == {"sha256"}
    record["poseidon"] = "cd" * 32
    assert rejected(scenario) == "COMPOSITE_COMMITMENT_UNPROVEN"


@pytest.mark.parametrize("name", ["reference-decision\n", "body\n"])
def test_policy_names_with_a_trailing_newline_are_refused(name: str) -> None:
    text = policy_text().replace('"reference-decision"', json.dumps(name)).replace('name = "body"', "name = BODY")
    text = text.replace("BODY", json.dumps("body\n" if name == "body\n" else "body"))
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(text.encode())
    assert caught.value.code == "POLICY_NAME_INVALID"


def test_policy_with_an_integer_beyond_the_int_string_limit_is_a_typed_refusal() -> None:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy((policy_text() + "\n[extra]\nx = " + "9" * 5000 + "\n").encode())
    assert caught.value.code == "POLICY_TOML_INVALID"
