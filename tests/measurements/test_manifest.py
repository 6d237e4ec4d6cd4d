"""Manifest creation, signing (local key) and verification, including rejections."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from eif.conftest import run_cli
from trustdial_verifier._internal.measurements import ManifestError, load_signed_manifest, parse_manifest

from infra.measurements import LocalKeySigner, sign_manifest
from infra.measurements.errors import MeasurementsError
from measurements.manifests import KAT1, REVISION, kat1_manifest, key_files

KAT1_PCRS = json.loads((KAT1.parent / "kat1.rust.measurements.json").read_text())


def _signed(tmp_path: Path, manifest: bytes | None = None) -> tuple[bytes, Path, Path]:
    private, public = key_files(tmp_path)
    return sign_manifest(manifest or kat1_manifest(), LocalKeySigner(private.read_bytes())), private, public


def test_created_manifest_records_the_eif_measurements() -> None:
    doc = parse_manifest(kat1_manifest()).document
    assert doc["schema"] == "trustdial.measurements/v1"
    assert doc["pcrs"] == {
        "PCR0": KAT1_PCRS["PCR0"],
        "PCR1": KAT1_PCRS["PCR1"],
        "PCR2": KAT1_PCRS["PCR2"],
        "PCR8": None,
    }
    assert doc["eif"]["sha384"] == hashlib.sha384(KAT1.read_bytes()).hexdigest()
    assert doc["eif"]["sha256"] == hashlib.sha256(KAT1.read_bytes()).hexdigest()
    assert doc["source_revision"] == REVISION
    assert doc["models"] == {"mnist": {"sha256": "44" * 32}}


def test_manifest_creation_is_deterministic() -> None:
    assert kat1_manifest() == kat1_manifest()


def test_signed_manifest_round_trips(tmp_path: Path) -> None:
    signed, _, public = _signed(tmp_path)
    manifest = load_signed_manifest(signed, public.read_bytes())
    assert manifest.raw == kat1_manifest()
    assert manifest.pcrs["PCR0"] == KAT1_PCRS["PCR0"]


DOCS = Path(__file__).resolve().parents[2] / "docs"


def _doc_snippet(marker: str) -> str:
    """The code block under ``<!-- interop: MARKER -->`` in docs/measurements.md, exactly as published."""
    text = (DOCS / "measurements.md").read_text()
    after = text.split(f"<!-- interop: {marker} -->", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_pycose_cannot_decode_the_tagged_manifest_as_the_docs_state(tmp_path: Path) -> None:
    from pycose.messages import CoseMessage, Sign1Message

    signed, _, _ = _signed(tmp_path)
    for decode in (Sign1Message.decode, CoseMessage.decode):
        with pytest.raises(TypeError, match="cannot be decoded as COSE message"):
            decode(signed)


def test_the_docs_stock_cose_recipe_verifies_a_manifest(tmp_path: Path) -> None:
    """docs/measurements.md's pycose snippet, run verbatim: an independent COSE implementation checks the
    signature and hands back the manifest bytes; on a tampered payload the same snippet fails."""
    from cryptography.hazmat.primitives import serialization

    signed, private, _ = _signed(tmp_path)
    key = serialization.load_pem_private_key(private.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    snippet = _doc_snippet("pycose")
    scope: dict[str, object] = {"signed": signed, "public_key": key.public_key()}
    exec(snippet, scope)
    assert scope["manifest_json"] == kat1_manifest()
    tampered = signed.replace(b'"PCR0": "7c', b'"PCR0": "8c')
    assert tampered != signed
    with pytest.raises(AssertionError):
        exec(snippet, {"signed": tampered, "public_key": key.public_key()})


def test_tampered_manifest_is_rejected(tmp_path: Path) -> None:
    signed, _, public = _signed(tmp_path)
    items = list(cbor2.loads(signed).value)
    items[2] = items[2].replace(b'"PCR0": "7c', b'"PCR0": "8c')
    with pytest.raises(ManifestError) as info:
        load_signed_manifest(cbor2.dumps(cbor2.CBORTag(18, items)), public.read_bytes())
    assert info.value.code == "MANIFEST_BAD_SIGNATURE"


def test_wrong_key_is_rejected(tmp_path: Path) -> None:
    signed, _, _ = _signed(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, wrong_public = key_files(other)
    with pytest.raises(ManifestError) as info:
        load_signed_manifest(signed, wrong_public.read_bytes())
    assert info.value.code == "MANIFEST_BAD_SIGNATURE"


def test_unsigned_manifest_is_rejected(tmp_path: Path) -> None:
    _, public = key_files(tmp_path)
    with pytest.raises(ManifestError) as info:
        load_signed_manifest(kat1_manifest(), public.read_bytes())
    assert info.value.code == "MANIFEST_NOT_SIGNED"


def test_empty_signature_is_rejected(tmp_path: Path) -> None:
    signed, _, public = _signed(tmp_path)
    items = list(cbor2.loads(signed).value)
    items[3] = b""
    with pytest.raises(ManifestError) as info:
        load_signed_manifest(cbor2.dumps(cbor2.CBORTag(18, items)), public.read_bytes())
    assert info.value.code == "MANIFEST_NOT_SIGNED"


def test_non_p384_verification_key_is_refused(tmp_path: Path) -> None:
    signed, _, _ = _signed(tmp_path)
    other = tmp_path / "p256"
    other.mkdir()
    _, p256_public = key_files(other, ec.SECP256R1())
    with pytest.raises(ManifestError) as info:
        load_signed_manifest(signed, p256_public.read_bytes())
    assert info.value.code == "MANIFEST_BAD_KEY"


def test_signer_refuses_a_non_p384_private_key(tmp_path: Path) -> None:
    private, _ = key_files(tmp_path, ec.SECP256R1())
    with pytest.raises(MeasurementsError) as info:
        LocalKeySigner(private.read_bytes())
    assert info.value.code == "SIGNER_KEY_INVALID"


def _mutated(change: str) -> bytes:
    doc = json.loads(kat1_manifest())
    if change == "missing":
        del doc["pcrs"]["PCR1"]
    elif change == "unknown":
        doc["extra"] = 1
    elif change == "uppercase":
        doc["pcrs"]["PCR0"] = doc["pcrs"]["PCR0"].upper()
    elif change == "short":
        doc["eif"]["sha384"] = doc["eif"]["sha384"][:-2]
    elif change == "pcr8_absent":
        del doc["pcrs"]["PCR8"]
    elif change == "zk_incomplete":
        doc["zk"] = {"m": {"vk_sha256": "aa" * 32}}
    return json.dumps(doc).encode()


@pytest.mark.parametrize("change", ["missing", "unknown", "uppercase", "short", "pcr8_absent", "zk_incomplete"])
def test_schema_violations_are_rejected(change: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(_mutated(change))
    assert info.value.code == "MANIFEST_SCHEMA"


def test_unknown_schema_version_is_rejected() -> None:
    doc = json.loads(kat1_manifest())
    doc["schema"] = "trustdial.measurements/v9"
    with pytest.raises(ManifestError) as info:
        parse_manifest(json.dumps(doc).encode())
    assert info.value.code == "MANIFEST_UNSUPPORTED_SCHEMA"


def test_duplicate_json_keys_are_rejected() -> None:
    raw = kat1_manifest().replace(b'"schema":', b'"schema": "x", "schema":', 1)
    with pytest.raises(ManifestError) as info:
        parse_manifest(raw)
    assert info.value.code == "MANIFEST_BAD_JSON"


def test_zk_entries_with_all_hashes_are_accepted() -> None:
    entry = {"vk_sha256": "aa" * 32, "settings_sha256": "bb" * 32, "srs_sha256": "cc" * 32,
             "compiled_sha256": "dd" * 32, "srs_kind": "kzg-dev"}  # fmt: skip
    assert parse_manifest(kat1_manifest(zk={"mnist": entry})).zk == {"mnist": entry}


def test_cli_create_sign_verify_and_reject(tmp_path: Path) -> None:
    private, public = key_files(tmp_path)
    manifest, signed = tmp_path / "m.json", tmp_path / "m.cose"
    status, out, err = run_cli(
        "trustdial", "measurements", "create", "--eif", str(KAT1), "--source-revision", REVISION,
        "--blob", f"init={'11' * 32}", "--output", str(manifest),
    )  # fmt: skip
    assert status == 0, err
    assert out["manifest_sha384"] == hashlib.sha384(manifest.read_bytes()).hexdigest()
    status, _, err = run_cli("trustdial", "measurements", "sign", "--manifest", str(manifest), "--key", str(private),
                             "--output", str(signed))  # fmt: skip
    assert status == 0, err
    status, out, _ = run_cli("trustdial-verify", "measurements", str(signed), "--public-key", str(public))
    assert status == 0 and out["valid"] is True
    assert out["manifest"]["pcrs"]["PCR0"] == KAT1_PCRS["PCR0"]
    status, out, _ = run_cli("trustdial-verify", "measurements", str(manifest), "--public-key", str(public))
    assert status == 1 and out["code"] == "MANIFEST_NOT_SIGNED"
    tampered = tmp_path / "t.cose"
    tampered.write_bytes(signed.read_bytes().replace(b'"arch": "x86_64"', b'"arch": "aarch64"'[:16]))
    assert tampered.read_bytes() != signed.read_bytes()
    status, out, _ = run_cli("trustdial-verify", "measurements", str(tampered), "--public-key", str(public))
    assert status == 1 and out["code"] == "MANIFEST_BAD_SIGNATURE"


def test_cli_checks_an_eif_against_the_signed_manifest(tmp_path: Path) -> None:
    signed, _, public = _signed(tmp_path)
    path = tmp_path / "m.cose"
    path.write_bytes(signed)
    status, out, _ = run_cli("trustdial-verify", "measurements", str(path), "--public-key", str(public),
                             "--eif", str(KAT1))  # fmt: skip
    assert status == 0 and out["eif_checked"] is True
    other = KAT1.parent / "kat2.signed.eif"
    status, out, _ = run_cli("trustdial-verify", "measurements", str(path), "--public-key", str(public),
                             "--eif", str(other))  # fmt: skip
    assert status == 1 and out["code"] == "MANIFEST_EIF_MISMATCH"
