"""Attacks on signed measurement manifests: the signature envelope is attacker-editable, so every
change to it must be a typed ManifestError, never an acceptance or a crash."""

from __future__ import annotations

import json
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from trustdial_verifier._internal.cli import main
from trustdial_verifier._internal.measurements import load_signed_manifest
from trustdial_verifier._internal.measurements.errors import ManifestError

from infra.measurements import create_manifest

KAT1 = Path(__file__).resolve().parent.parent / "data" / "eif" / "kat1.rust.eif"
CONTENT_TYPE = "application/trustdial.measurements+json"
P384_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def manifest() -> bytes:
    return create_manifest(
        eif=KAT1,
        source_revision="0" * 40,
        build_time="2026-11-26T00:00:00Z",
        blobs={},
        image_digest=None,
        models={},
    )


def _sign(key: ec.EllipticCurvePrivateKey, payload: bytes, protected: bytes) -> list[object]:
    """An independent ES384 COSE_Sign1 signer (RFC 9052 Sig_structure, raw r||s)."""
    der = key.sign(cbor2.dumps(["Signature1", protected, b"", payload]), ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der)
    return [protected, {}, payload, r.to_bytes(48, "big") + s.to_bytes(48, "big")]


def _envelope(parts: list[object]) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(18, parts))


def _code(data: bytes, key: ec.EllipticCurvePrivateKey) -> str:
    with pytest.raises(ManifestError) as caught:
        load_signed_manifest(data, key.public_key())
    return caught.value.code


def test_independently_signed_manifest_is_accepted(key: ec.EllipticCurvePrivateKey, manifest: bytes) -> None:
    parts = _sign(key, manifest, cbor2.dumps({1: -35, 3: CONTENT_TYPE}))
    assert load_signed_manifest(_envelope(parts), key.public_key()).raw == manifest


def test_algorithm_relabelled_es256_is_rejected(key: ec.EllipticCurvePrivateKey, manifest: bytes) -> None:
    parts = _sign(key, manifest, cbor2.dumps({1: -35, 3: CONTENT_TYPE}))
    parts[0] = cbor2.dumps({1: -7, 3: CONTENT_TYPE})
    assert _code(_envelope(parts), key) == "MANIFEST_BAD_ALGORITHM"


@pytest.mark.parametrize(
    "signature",
    [bytes(96), P384_ORDER.to_bytes(48, "big") + (1).to_bytes(48, "big"), b"\xff" * 96],
    ids=["zero", "r=n", "all-ones"],
)
def test_out_of_range_signature_values_are_rejected(
    key: ec.EllipticCurvePrivateKey, manifest: bytes, signature: bytes
) -> None:
    parts = _sign(key, manifest, cbor2.dumps({1: -35, 3: CONTENT_TYPE}))
    parts[3] = signature
    assert _code(_envelope(parts), key) == "MANIFEST_BAD_SIGNATURE"


def test_envelope_inside_embedded_cbor_tag_is_rejected(key: ec.EllipticCurvePrivateKey, manifest: bytes) -> None:
    signed = _envelope(_sign(key, manifest, cbor2.dumps({1: -35, 3: CONTENT_TYPE})))
    assert _code(cbor2.dumps(cbor2.CBORTag(24, signed)), key) == "MANIFEST_NOT_SIGNED"


def test_detached_payload_is_rejected(key: ec.EllipticCurvePrivateKey, manifest: bytes) -> None:
    parts = _sign(key, manifest, cbor2.dumps({1: -35, 3: CONTENT_TYPE}))
    parts[2] = None
    assert _code(_envelope(parts), key) == "MANIFEST_BAD_ENVELOPE"


def test_composite_receipt_check_with_a_root_that_is_not_pem_is_a_usage_error(
    key: ec.EllipticCurvePrivateKey, manifest: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed = tmp_path / "manifest.cose"
    signed.write_bytes(_envelope(_sign(key, manifest, cbor2.dumps({1: -35, 3: CONTENT_TYPE}))))
    public = tmp_path / "manifest-key.pem"
    public.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    root = tmp_path / "root.pem"
    root.write_text("not a certificate")
    receipt = tmp_path / "composite.json"
    receipt.write_text(json.dumps({"format": "trustdial.composite-receipt/1"}))
    argv = ["receipt", str(receipt), "--measurements", str(signed), "--manifest-key", str(public), "--root", str(root)]
    status = main([*argv, "--json"])
    result = json.loads(capsys.readouterr().out)
    assert (status, result["code"]) == (2, "BAD_ROOT")
