"""The public entry points on real evidence and on wrong input: the shipped AWS-signed Nitro documents verify
through ``trustdial_verifier.verify_attestation`` exactly as the independent verifier of data/nitro/expected.json
decided, and every wrong argument is a typed error with a stable code."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import trustdial_verifier as tv
from nitro_vectors import NitroVector, nitro_vectors

VECTORS = nitro_vectors()
GENUINE = [v for v in VECTORS if v.genuine]
BAD = [v for v in VECTORS if not v.genuine]


def _policy(vector: NitroVector) -> tv.AttestationPolicy:
    return tv.PcrsEqual({index: value for index, value in vector.pcrs.items() if index < 3})


def test_the_shipped_vectors_hold_genuine_and_bad_documents() -> None:
    assert len(GENUINE) >= 10 and len(BAD) >= 3


@pytest.mark.parametrize("vector", GENUINE, ids=[v.file for v in GENUINE])
def test_genuine_document_verifies_with_the_fields_the_independent_verifier_read(vector: NitroVector) -> None:
    debug = bool(vector.expected["debug_mode"])
    document = tv.verify_attestation(vector.raw, _policy(vector), at=vector.at, allow_debug=debug)
    assert isinstance(document, tv.AttestationDocument)
    assert document.module_id == vector.expected["module_id"]
    assert document.timestamp_ms == vector.expected["timestamp_ms"]
    assert document.debug_mode is debug
    assert document.pcrs == vector.pcrs
    assert document.sha256 == hashlib.sha256(vector.raw).digest()


@pytest.mark.parametrize("vector", BAD, ids=[v.file for v in BAD])
def test_bad_document_is_refused_with_the_expected_code(vector: NitroVector) -> None:
    with pytest.raises(tv.AttestationError) as caught:
        tv.verify_attestation(vector.raw, tv.UnsafeNoPolicy(), at=vector.claimed_time, allow_debug=True)
    assert vector.accepts_code(caught.value.code), caught.value.code


@pytest.mark.parametrize("shift", [timedelta(days=1), timedelta(days=-1)], ids=["+1d", "-1d"])
def test_genuine_document_outside_its_certificate_window_is_refused(shift: timedelta) -> None:
    vector = GENUINE[0]
    assert vector.expected["negatives"] == {**vector.expected["negatives"], "+1d": "CERT_TIME", "-1d": "CERT_TIME"}
    with pytest.raises(tv.CertificateChainError) as caught:
        tv.verify_attestation(vector.raw, _policy(vector), at=vector.at + shift, allow_debug=True)
    assert caught.value.code == "CERT_TIME"


def test_debug_document_is_refused_unless_allowed() -> None:
    debug = next(v for v in GENUINE if v.expected["debug_mode"])
    with pytest.raises(tv.DebugModeError):
        tv.verify_attestation(debug.raw, _policy(debug), at=debug.at)


def test_wrong_pcr_is_a_policy_rejection() -> None:
    vector = next(v for v in GENUINE if not v.expected["debug_mode"])
    with pytest.raises(tv.PolicyError):
        tv.verify_attestation(vector.raw, tv.PcrsEqual({0: bytes(48)}), at=vector.at)


def test_an_empty_policy_refuses_a_genuine_document() -> None:
    vector = next(v for v in GENUINE if not v.expected["debug_mode"])
    for combinator in (tv.AllOf, tv.AnyOf):
        with pytest.raises(tv.PolicyError) as caught:
            tv.verify_attestation(vector.raw, combinator([]), at=vector.at)
        assert caught.value.code == "POLICY_EMPTY"


# --- wrong input through every public function: typed, coded, never an untyped crash --------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: tv.verify_attestation("text", tv.UnsafeNoPolicy()),
        lambda: tv.verify_attestation(GENUINE[0].raw, None),
        lambda: tv.verify_attestation(GENUINE[0].raw, tv.UnsafeNoPolicy(), at=datetime(2024, 9, 7)),
        lambda: tv.verify_receipt("text", attestation=b"", policy=tv.UnsafeNoPolicy(), expected=None),
        lambda: tv.verify_receipt(b"", attestation=b"", policy=tv.UnsafeNoPolicy(), expected={}),
        lambda: tv.verify_manifest("text", b""),
        lambda: tv.verify_manifest(b"\xa0", 42),
        lambda: tv.verify_manifest(b"\xa0", b"not a key"),
        lambda: tv.verify_composite(b"{}", "options"),
        lambda: tv.verify_composite("{}", tv.CompositeOptions(manifest=b"", manifest_key=b"")),
        lambda: tv.verify_composite(b"{}", tv.CompositeOptions(manifest=b"\xa0", manifest_key=b"not a key")),
        lambda: tv.CompositeOptions(manifest="x", manifest_key=b""),
        lambda: tv.CompositeOptions(manifest=b"", manifest_key=b"", max_age_s=-1),
        lambda: tv.CompositeOptions(manifest=b"", manifest_key=b"", max_attestation_age_s=True),
        lambda: tv.CompositeOptions(manifest=b"", manifest_key=b"", at=datetime(2026, 1, 1)),
        lambda: tv.CompositeOptions(manifest=b"", manifest_key=b"", request_nonce="ab" * 31 + "zz"),
        lambda: tv.CompositeOptions(manifest=b"", manifest_key=b"", request_nonce="ab" * 32 + "\n"),
        lambda: tv.CompositeOptions(manifest=b"", manifest_key=b"", policy={"segments": []}),
        lambda: tv.parse_pipeline_policy("text"),
        lambda: tv.parse_pipeline_policy(b"a = " + b"9" * 5000),
        lambda: tv.parse_pipeline_policy(b"x" * ((1 << 20) + 1)),
        lambda: tv.load_pipeline_policy(Path("/nonexistent/pipeline.toml")),
        lambda: tv.recompute_pcrs("/nonexistent/image.eif"),
        lambda: tv.verify_proof("/nonexistent/proof.json", "/nonexistent", expected_sha256={}),
    ],
)
def test_wrong_input_is_a_typed_error_with_a_code(call: object) -> None:
    assert callable(call)
    with pytest.raises((tv.VerificationError, tv.InputError)) as caught:
        call()
    assert isinstance(caught.value.code, str) and caught.value.code.isupper()


def test_a_directory_is_not_an_eif(tmp_path: Path) -> None:
    with pytest.raises((tv.EifError, tv.InputError)):
        tv.recompute_pcrs(tmp_path)


def test_a_truncated_eif_is_an_eif_error(tmp_path: Path) -> None:
    image = tmp_path / "image.eif"
    image.write_bytes(b".eif" + bytes(100))
    with pytest.raises(tv.EifError):
        tv.recompute_pcrs(image)
