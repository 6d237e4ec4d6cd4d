"""COSE headers of signed manifests (RFC 9052 §3): ``crit`` may only name headers the verifier understands, a
content type must be the manifest's, malformed headers are refused, and plain unknown labels are ignored. Every
manifest here is signed correctly (by ``cose_sign1``, independent of the code under test), so each rejection is
the header's doing, not the signature's."""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eif.conftest import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from trustdial_verifier._internal.measurements import ManifestError, load_signed_manifest

from measurements.manifests import cose_sign1, kat1_manifest

CONTENT_TYPE = "application/trustdial.measurements+json"  # docs/measurements.md, written out independently


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def manifest() -> bytes:
    return kat1_manifest()


def _code(signed: bytes, key: ec.EllipticCurvePrivateKey) -> str:
    with pytest.raises(ManifestError) as caught:
        load_signed_manifest(signed, key.public_key())
    return caught.value.code


@pytest.mark.parametrize(
    "protected",
    [{1: -35, 99: "a note"}, {1: -35, "x-build": "ci-7"}, {1: -35, 3: CONTENT_TYPE, 4: b"kid-in-protected"}],
    ids=["int-label", "text-label", "kid"],
)
def test_unknown_labels_not_marked_critical_are_ignored(
    key: ec.EllipticCurvePrivateKey, manifest: bytes, protected: dict[object, object]
) -> None:
    assert load_signed_manifest(cose_sign1(key, manifest, cbor2.dumps(protected)), key.public_key()).raw == manifest


def test_content_type_may_be_absent(key: ec.EllipticCurvePrivateKey, manifest: bytes) -> None:
    assert load_signed_manifest(cose_sign1(key, manifest, cbor2.dumps({1: -35})), key.public_key()).raw == manifest


def test_crit_naming_only_alg_and_content_type_is_accepted(key: ec.EllipticCurvePrivateKey, manifest: bytes) -> None:
    protected = cbor2.dumps({1: -35, 2: [1, 3], 3: CONTENT_TYPE})
    assert load_signed_manifest(cose_sign1(key, manifest, protected), key.public_key()).raw == manifest


@pytest.mark.parametrize(
    "protected",
    [
        {1: -35, 2: [99], 99: "must be understood"},
        {1: -35, 2: ["x-policy"], "x-policy": "strict"},
        {1: -35, 2: [1, 4], 4: b"kid"},
        {1: -35, 2: [2]},
    ],
    ids=["int-label", "text-label", "kid", "crit-itself"],
)
def test_critical_header_the_verifier_does_not_understand_is_rejected(
    key: ec.EllipticCurvePrivateKey, manifest: bytes, protected: dict[object, object]
) -> None:
    assert _code(cose_sign1(key, manifest, cbor2.dumps(protected)), key) == "MANIFEST_UNKNOWN_CRITICAL"


@pytest.mark.parametrize(
    "crit",
    [[], 99, [b"\x01"], [99], [1.5]],
    ids=["empty", "not-an-array", "bytes-label", "label-absent-from-header", "float-label"],
)
def test_malformed_crit_is_rejected(key: ec.EllipticCurvePrivateKey, manifest: bytes, crit: object) -> None:
    assert _code(cose_sign1(key, manifest, cbor2.dumps({1: -35, 2: crit})), key) == "MANIFEST_BAD_ENVELOPE"


def test_crit_in_the_unprotected_header_is_rejected(key: ec.EllipticCurvePrivateKey, manifest: bytes) -> None:
    signed = cose_sign1(key, manifest, cbor2.dumps({1: -35}), unprotected={2: [99], 99: "x"})
    assert _code(signed, key) == "MANIFEST_BAD_ENVELOPE"


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/trustdial.measurements+cbor", 50, ""],
    ids=["json", "other-trustdial-type", "coap-format-50", "empty"],
)
def test_protected_content_type_other_than_the_manifests_is_rejected(
    key: ec.EllipticCurvePrivateKey, manifest: bytes, content_type: object
) -> None:
    signed = cose_sign1(key, manifest, cbor2.dumps({1: -35, 3: content_type}))
    assert _code(signed, key) == "MANIFEST_BAD_CONTENT_TYPE"


def test_unprotected_content_type_other_than_the_manifests_is_rejected(
    key: ec.EllipticCurvePrivateKey, manifest: bytes
) -> None:
    signed = cose_sign1(key, manifest, cbor2.dumps({1: -35}), unprotected={3: "text/plain"})
    assert _code(signed, key) == "MANIFEST_BAD_CONTENT_TYPE"


def test_label_in_both_header_buckets_is_rejected(key: ec.EllipticCurvePrivateKey, manifest: bytes) -> None:
    signed = cose_sign1(key, manifest, cbor2.dumps({1: -35, 3: CONTENT_TYPE}), unprotected={3: CONTENT_TYPE})
    assert _code(signed, key) == "MANIFEST_BAD_ENVELOPE"


def test_duplicate_label_in_the_protected_header_is_rejected(key: ec.EllipticCurvePrivateKey, manifest: bytes) -> None:
    # cbor2 never writes a duplicate key: the map {1: -35, 1: -35} is written out by hand (RFC 8949 major type 5)
    protected = b"\xa2" + cbor2.dumps(1) + cbor2.dumps(-35) + cbor2.dumps(1) + cbor2.dumps(-35)
    assert _code(cose_sign1(key, manifest, protected), key) == "MANIFEST_BAD_ENVELOPE"


def test_empty_protected_header_has_no_algorithm(key: ec.EllipticCurvePrivateKey, manifest: bytes) -> None:
    assert _code(cose_sign1(key, manifest, b""), key) == "MANIFEST_BAD_ALGORITHM"


def test_protected_header_label_of_another_type_is_rejected(key: ec.EllipticCurvePrivateKey, manifest: bytes) -> None:
    assert _code(cose_sign1(key, manifest, cbor2.dumps({1: -35, b"\x07": 1})), key) == "MANIFEST_BAD_ENVELOPE"


def test_protected_header_label_beyond_the_cbor_integer_range_is_rejected(
    key: ec.EllipticCurvePrivateKey, manifest: bytes
) -> None:
    # -(2**64) - 1 is written as a bignum (tag 3), not a CBOR integer: not a valid label
    assert _code(cose_sign1(key, manifest, cbor2.dumps({1: -35, -(2**64) - 1: 0})), key) == "MANIFEST_BAD_ENVELOPE"


def test_cli_reports_an_unknown_critical_header(
    key: ec.EllipticCurvePrivateKey, manifest: bytes, tmp_path: Path
) -> None:
    signed = tmp_path / "m.cose"
    signed.write_bytes(cose_sign1(key, manifest, cbor2.dumps({1: -35, 2: [99], 99: 1})))
    public = tmp_path / "key.pem"
    public.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    status, out, _ = run_cli("trustdial-verify", "measurements", str(signed), "--public-key", str(public))
    assert (status, out["valid"], out["code"]) == (1, False, "MANIFEST_UNKNOWN_CRITICAL")


def test_reason_for_a_huge_header_value_stays_short(key: ec.EllipticCurvePrivateKey, manifest: bytes) -> None:
    signed = cose_sign1(key, manifest, cbor2.dumps({1: -35, 3: "x" * 100_000}))
    with pytest.raises(ManifestError) as caught:
        load_signed_manifest(signed, key.public_key())
    assert caught.value.code == "MANIFEST_BAD_CONTENT_TYPE"
    assert len(caught.value.reason) < 300


# COSE labels are CBOR integers (major types 0 and 1: -2**64 .. 2**64 - 1) or text; beyond that cbor2 writes a bignum
# tag, which is not a label at all (and is refused as such)
EXTRA_LABELS = st.one_of(
    st.integers(min_value=4, max_value=2**64 - 1), st.integers(min_value=-(2**64), max_value=-1), st.text(max_size=12)
)
# Integers within CBOR's major types 0/1: a bignum (tag 2/3) is a tag, and the strict reader allows none in headers.
EXTRA_VALUES = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64 - 1), st.text(max_size=20), st.binary(max_size=20), st.booleans()
)


@settings(max_examples=40)
@given(extra=st.dictionaries(EXTRA_LABELS, EXTRA_VALUES, min_size=1, max_size=4))
def test_extra_labels_are_ignored_unless_critical(
    key: ec.EllipticCurvePrivateKey, manifest: bytes, extra: dict[object, object]
) -> None:
    plain = cose_sign1(key, manifest, cbor2.dumps({1: -35, 3: CONTENT_TYPE, **extra}))
    assert load_signed_manifest(plain, key.public_key()).raw == manifest
    critical = cose_sign1(key, manifest, cbor2.dumps({1: -35, 2: [next(iter(extra))], 3: CONTENT_TYPE, **extra}))
    assert _code(critical, key) == "MANIFEST_UNKNOWN_CRITICAL"
