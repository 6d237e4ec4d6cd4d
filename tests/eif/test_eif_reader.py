"""EIF reading and PCRs against upstream known answers, plus rejection of malformed files."""

from __future__ import annotations

import hashlib
import io
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trustdial_verifier._internal.eif import (
    EifError,
    measure_eif,
    measure_eif_stream,
    pcr3_for_role_arn,
    pcr4_for_instance_id,
)

from eif.conftest import DATA, run_cli
from eif.eif_bytes import fix_crc, section_header_offsets

KAT1 = DATA / "kat1.rust.eif"
KAT2 = DATA / "kat2.signed.eif"
EIF_A = DATA / "eif_A" / "eif_A.eif"


def _expected(path: Path) -> dict[str, str]:
    return json.loads(path.read_text())


def test_kat1_pcrs_match_upstream_rust_builder() -> None:
    expected = _expected(DATA / "kat1.rust.measurements.json")
    m = measure_eif(KAT1)
    assert (m.pcr0, m.pcr1, m.pcr2, m.pcr8) == (expected["PCR0"], expected["PCR1"], expected["PCR2"], None)


def test_kat1_file_digest_and_crc_match_known_answer() -> None:
    m = measure_eif(KAT1)
    assert m.sha256 == "eae3f36557fde41d51da988d4be81e0bafe240ad923fb15829d6bc9b62a1d0b1"
    assert m.crc32 == 1048020091
    assert [s.offset for s in m.sections] == [548, 12905, 13036, 13353, 15413]
    assert [s.size for s in m.sections] == [12345, 119, 305, 2048, 1024]


def test_kat2_pcr8_is_signing_certificate_measurement() -> None:
    expected = _expected(DATA / "kat2.measurements.json")
    m = measure_eif(KAT2)
    assert m.pcrs() == {k: expected[k] for k in ("PCR0", "PCR1", "PCR2", "PCR8")}


def test_kat2_pcr8_equals_extend_of_certificate_der() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate((DATA / "kat2.cert.pem").read_bytes()).public_bytes(Encoding.DER)
    assert measure_eif(KAT2).pcr8 == hashlib.sha384(bytes(48) + hashlib.sha384(der).digest()).hexdigest()


def test_eif_a_matches_expected_digest_crc_and_pcrs() -> None:
    expected = _expected(DATA / "eif_A" / "expected.json")
    m = measure_eif(EIF_A)
    assert m.sha256 == expected["sha256"]
    assert m.crc32 == expected["crc32"]
    assert (m.pcr0, m.pcr1, m.pcr2) == (expected["PCR0"], expected["PCR1"], expected["PCR2"])
    assert [s.type for s in m.sections] == expected["section_types"]
    assert [s.offset for s in m.sections] == expected["section_offsets"]


def test_single_ramdisk_pcr2_is_the_empty_content_constant() -> None:
    vectors = json.loads((DATA / "cbor_vectors.json").read_text())
    assert measure_eif(EIF_A).pcr2 == vectors["pcr2_single_ramdisk"]


def test_pcr3_and_pcr4_match_aws_documentation_examples() -> None:
    docs = json.loads((DATA / "cbor_vectors.json").read_text())["pcr3_pcr4_aws_docs"]
    assert (
        pcr3_for_role_arn("arn:aws:iam::123456789012:role/Webserver")
        == docs["arn:aws:iam::123456789012:role/Webserver"]
    )
    assert pcr4_for_instance_id("i-1234567890abcdef0") == docs["i-1234567890abcdef0"]


def test_metadata_is_reported_parsed() -> None:
    metadata = measure_eif(EIF_A).metadata
    assert metadata == json.loads((DATA / "eif_A" / "metadata_section.json").read_text())


def test_verify_cli_json_has_the_documented_keys() -> None:
    status, out, _ = run_cli("trustdial-verify", "eif", str(KAT2))
    assert status == 0
    for key in ("PCR0", "PCR1", "PCR2", "PCR8", "sha256", "sha384", "arch", "sections", "metadata"):
        assert key in out
    assert out["sha384"] == hashlib.sha384(KAT2.read_bytes()).hexdigest()
    assert out["arch"] == "x86_64"


def test_verify_cli_reports_pcr8_null_when_unsigned() -> None:
    status, out, _ = run_cli("trustdial-verify", "eif", str(KAT1))
    assert status == 0 and out["PCR8"] is None


def _reject(data: bytes, code: str, *, known_size: bool = True) -> EifError:
    with pytest.raises(EifError) as info:
        measure_eif_stream(io.BytesIO(data), total_size=len(data) if known_size else None)
    assert info.value.code == code, info.value.reason
    return info.value


def test_truncated_file_is_rejected() -> None:
    data = KAT1.read_bytes()
    _reject(data[:-100], "EIF_SECTION_PAST_EOF")
    _reject(data[:-100], "EIF_TRUNCATED", known_size=False)
    _reject(data[:300], "EIF_TRUNCATED")


def test_wrong_magic_is_rejected() -> None:
    data = KAT1.read_bytes()
    _reject(b"\x7fELF" + data[4:], "EIF_BAD_MAGIC")


def test_bad_crc_is_rejected() -> None:
    data = bytearray(KAT1.read_bytes())
    data[600] ^= 0x01
    _reject(bytes(data), "EIF_BAD_CRC")


def test_unknown_section_type_is_rejected() -> None:
    data = bytearray(KAT1.read_bytes())
    offset = section_header_offsets(bytes(data))[1]
    data[offset : offset + 2] = struct.pack(">H", 9)
    _reject(fix_crc(bytes(data)), "EIF_UNKNOWN_SECTION_TYPE")


def test_section_size_past_end_of_file_is_rejected() -> None:
    data = bytearray(KAT1.read_bytes())
    offset = section_header_offsets(bytes(data))[3]
    data[offset + 4 : offset + 12] = struct.pack(">Q", 4096)
    _reject(fix_crc(bytes(data)), "EIF_SECTION_PAST_EOF")


def test_ten_gigabyte_claimed_section_is_rejected_without_reading(tmp_path: Path) -> None:
    data = bytearray(KAT1.read_bytes())
    offset = section_header_offsets(bytes(data))[0]
    data[offset + 4 : offset + 12] = struct.pack(">Q", 10 * 1024**3)
    path = tmp_path / "huge.eif"
    path.write_bytes(fix_crc(bytes(data)))
    with pytest.raises(EifError) as info:
        measure_eif(path)
    assert info.value.code == "EIF_SECTION_PAST_EOF"
    assert str(10 * 1024**3) in info.value.reason


def test_huge_metadata_section_claim_on_a_stream_is_refused_before_allocation() -> None:
    data = bytearray(KAT1.read_bytes())
    offset = section_header_offsets(bytes(data))[2]
    data[offset + 4 : offset + 12] = struct.pack(">Q", 10 * 1024**3)
    _reject(fix_crc(bytes(data)), "EIF_SECTION_TOO_LARGE", known_size=False)


def test_header_table_disagreeing_with_sections_is_rejected() -> None:
    data = bytearray(KAT1.read_bytes())
    data[28 + 8 : 28 + 16] = struct.pack(">Q", 12000)
    _reject(fix_crc(bytes(data)), "EIF_HEADER_TABLE_MISMATCH")


def test_unsupported_version_is_rejected() -> None:
    data = bytearray(KAT1.read_bytes())
    data[4:6] = struct.pack(">H", 9)
    _reject(fix_crc(bytes(data)), "EIF_UNSUPPORTED_VERSION")


def test_tampered_signature_is_rejected() -> None:
    data = bytearray(KAT2.read_bytes())
    offset = section_header_offsets(bytes(data))[5]
    # the last CBOR element of the section is a signature byte; flip it within the 0..255 range
    data[-1] ^= 0x01
    assert offset < len(data) - 1
    _reject(fix_crc(bytes(data)), "EIF_SIGNATURE_INVALID")


def test_signature_over_another_pcr0_is_rejected() -> None:
    data = bytearray(KAT2.read_bytes())
    kernel_data = section_header_offsets(bytes(data))[0] + 12
    data[kernel_data] ^= 0xFF
    _reject(fix_crc(bytes(data)), "EIF_SIGNATURE_INVALID")


def test_cli_rejection_exit_status_and_code(tmp_path: Path) -> None:
    path = tmp_path / "bad.eif"
    path.write_bytes(b"\x7fELF" + KAT1.read_bytes()[4:])
    status, out, _ = run_cli("trustdial-verify", "eif", str(path))
    assert status == 1
    assert out == {"valid": False, "code": "EIF_BAD_MAGIC", "reason": out["reason"]}


def test_cli_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    status, out, _ = run_cli("trustdial-verify", "eif", str(tmp_path / "absent.eif"))
    assert status == 2 and out["code"] == "FILE_NOT_FOUND"


@settings(max_examples=150)
@given(data=st.data())
def test_any_corruption_gives_an_eif_error_or_a_valid_reading(data: st.DataObject) -> None:
    original = (KAT2 if data.draw(st.booleans()) else KAT1).read_bytes()
    blob = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(blob) - 1))
        blob[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    candidate = bytes(blob[:cut])
    if data.draw(st.booleans()):
        candidate = fix_crc(candidate) if len(candidate) >= 548 else candidate
    try:
        m = measure_eif_stream(io.BytesIO(candidate), total_size=len(candidate))
    except EifError as err:
        assert err.code.startswith("EIF_") and err.reason
    else:
        assert len(m.pcr0) == 96


def test_duplicate_metadata_section_is_rejected() -> None:
    data = KAT1.read_bytes()
    offsets = section_header_offsets(data)
    metadata = data[offsets[2] : offsets[3]]
    count = struct.unpack(">H", data[26:28])[0]
    table_offsets = [*offsets, len(data)] + [0] * (31 - count)
    sizes = list(struct.unpack(">32Q", data[284:540])[:count]) + [len(metadata) - 12] + [0] * (31 - count)
    header = data[:26] + struct.pack(">H", count + 1) + struct.pack(">32Q", *table_offsets)
    header += struct.pack(">32Q", *sizes) + data[540:548]
    _reject(fix_crc(header + data[548:] + metadata), "EIF_SECTION_DUPLICATE")
