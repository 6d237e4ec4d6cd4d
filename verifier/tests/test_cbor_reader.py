"""The strict CBOR reader against RFC 8949 Appendix A examples and the inputs it must refuse."""

from __future__ import annotations

import pytest
from trustdial_verifier._internal.strict_cbor import MAX_DEPTH, CborError, CborTag, decode

# (hex, value) pairs from RFC 8949 Appendix A.
RFC8949_EXAMPLES = [
    ("00", 0),
    ("17", 23),
    ("1818", 24),
    ("1903e8", 1000),
    ("1b000000e8d4a51000", 1000000000000),
    ("1bffffffffffffffff", 18446744073709551615),
    ("20", -1),
    ("3863", -100),
    ("3bffffffffffffffff", -18446744073709551616),
    ("f4", False),
    ("f5", True),
    ("f6", None),
    ("40", b""),
    ("4401020304", b"\x01\x02\x03\x04"),
    ("60", ""),
    ("6449455446", "IETF"),
    ("62225c", '"\\'),
    ("63e6b0b4", "\u6c34"),
    ("80", []),
    ("83010203", [1, 2, 3]),
    ("8301820203820405", [1, [2, 3], [4, 5]]),
    ("a0", {}),
    ("a201020304", {1: 2, 3: 4}),
    ("a26161016162820203", {"a": 1, "b": [2, 3]}),
    ("9fff", []),
    ("9f018202039f0405ffff", [1, [2, 3], [4, 5]]),
    ("bf61610161629f0203ffff", {"a": 1, "b": [2, 3]}),
    ("d74401020304", CborTag(23, b"\x01\x02\x03\x04")),
]


@pytest.mark.parametrize(("encoded", "value"), RFC8949_EXAMPLES, ids=[e for e, _ in RFC8949_EXAMPLES])
def test_rfc8949_example_decodes(encoded: str, value: object) -> None:
    assert decode(bytes.fromhex(encoded), tags=frozenset({23})) == value


@pytest.mark.parametrize(
    ("encoded", "code"),
    [
        ("f93c00", "CBOR_UNSUPPORTED"),  # half float 1.0
        ("fb3ff199999999999a", "CBOR_UNSUPPORTED"),  # double 1.1
        ("f7", "CBOR_UNSUPPORTED"),  # undefined
        ("f0", "CBOR_UNSUPPORTED"),  # simple(16)
        ("5f42010243030405ff", "CBOR_UNSUPPORTED"),  # chunked byte string
        ("7f657374726561646d696e67ff", "CBOR_UNSUPPORTED"),  # chunked text string
        ("a201020103", "CBOR_DUPLICATE_KEY"),
        ("bf0102010303ff", "CBOR_DUPLICATE_KEY"),
        ("0000", "CBOR_TRAILING_BYTES"),
        ("", "CBOR_MALFORMED"),
        ("44010203", "CBOR_MALFORMED"),  # truncated byte string
        ("9f01", "CBOR_MALFORMED"),  # unterminated indefinite array
        ("ff", "CBOR_MALFORMED"),  # lone break
        ("1c", "CBOR_MALFORMED"),  # reserved additional information
        ("62c328", "CBOR_MALFORMED"),  # invalid UTF-8
        ("9bffffffffffffffff", "CBOR_MALFORMED"),  # absurd declared length
        ("a1f401", "CBOR_UNSUPPORTED"),  # boolean map key
    ],
)
def test_refused_input_raises_typed_error(encoded: str, code: str) -> None:
    with pytest.raises(CborError) as caught:
        decode(bytes.fromhex(encoded))
    assert caught.value.code == code


def test_nesting_beyond_limit_refused() -> None:
    with pytest.raises(CborError) as caught:
        decode(b"\x81" * (MAX_DEPTH + 1) + b"\x00")
    assert caught.value.code == "CBOR_TOO_DEEP"


def test_nesting_at_limit_accepted() -> None:
    value = decode(b"\x81" * MAX_DEPTH + b"\x00")
    for _ in range(MAX_DEPTH):
        assert isinstance(value, list)
        value = value[0]
    assert value == 0


def test_byte_strings_are_returned_as_received() -> None:
    inner = bytes.fromhex("bf6161f5ff")  # an indefinite map inside a byte string stays as-is
    assert decode(b"\x45" + inner) == inner


@pytest.mark.parametrize(
    ("encoded", "value"),
    [  # RFC 8949 Appendix A
        ("f93e00", 1.5),
        ("f98000", -0.0),
        ("f97bff", 65504.0),
        ("fa47c35000", 100000.0),
        ("fa7f7fffff", 3.4028234663852886e38),
        ("fb7e37e43c8800759c", 1.0e300),
        ("fbc010666666666666", -4.1),
    ],
)
def test_floats_decode_where_the_format_allows_them(encoded: str, value: float) -> None:
    assert decode(bytes.fromhex(encoded), floats=True) == value
    with pytest.raises(CborError) as err:
        decode(bytes.fromhex(encoded))
    assert err.value.code == "CBOR_UNSUPPORTED"


@pytest.mark.parametrize(
    "encoded",
    [b"\xf9\x7e\x00", b"\xf9\x7c\x00", b"\xfa\xff\x80\x00\x00", b"\xfb\x7f\xf8\x00\x00\x00\x00\x00\x01"],
    ids=["half-nan", "half-infinity", "single-minus-infinity", "double-nan"],
)
def test_non_finite_floats_are_refused_even_where_floats_are_allowed(encoded: bytes) -> None:
    with pytest.raises(CborError) as err:
        decode(encoded, floats=True)
    assert err.value.code == "CBOR_NON_FINITE"
