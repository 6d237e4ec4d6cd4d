"""``trustdial eif build`` against upstream EIFs, PCR formulas and determinism."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st
from trustdial_verifier._internal.eif import measure_eif

from eif.conftest import DATA, run_cli
from infra.image.eif_metadata import EifMetadata
from infra.image.eif_signing import EifSigner
from infra.image.eif_writer import write_eif
from infra.image.errors import BuildError

KAT1_CMDLINE = (
    "reboot=k panic=30 pci=off nomodules console=ttyS0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd "
    "random.trust_cpu=on"
)


def _pcr(content: bytes) -> str:
    return hashlib.sha384(bytes(48) + hashlib.sha384(content).digest()).hexdigest()


def _kat1_args(output: Path) -> list[str]:
    return [
        "eif", "build", "--kernel", str(DATA / "kat1.kernel"), "--cmdline", KAT1_CMDLINE,
        "--ramdisk", str(DATA / "kat1.ramdisk0.cpio"), "--ramdisk", str(DATA / "kat1.ramdisk1.cpio"),
        "--name", "hello", "--version", "1.0", "--build-time", "1970-01-01T00:00:00+00:00",
        "--build-tool", "eif_build", "--build-tool-version", "0.3.1", "--img-os", "Linux",
        "--img-kernel", "4.14.256", "--docker-info", str(DATA / "kat1.dockerinfo.json"), "--output", str(output),
    ]  # fmt: skip


def test_build_reproduces_kat1_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "kat1.eif"
    status, result, err = run_cli("trustdial", *_kat1_args(out))
    assert status == 0, err
    assert out.read_bytes() == (DATA / "kat1.rust.eif").read_bytes()
    assert result["PCR0"] == json.loads((DATA / "kat1.rust.measurements.json").read_text())["PCR0"]


def test_build_reproduces_eif_a_byte_for_byte(tmp_path: Path) -> None:
    md = json.loads((DATA / "eif_A" / "expected.json").read_text())["inputs"]["metadata"]
    out = tmp_path / "a.eif"
    status, _, err = run_cli(
        "trustdial", "eif", "build", "--kernel", str(DATA / "eif_A" / "kernel.bin"),
        "--cmdline", (DATA / "eif_A" / "cmdline.txt").read_text(), "--ramdisk", str(DATA / "eif_A" / "ramdisk0.bin"),
        "--name", md["img_name"], "--version", md["img_version"], "--build-time", md["build_time"],
        "--build-tool", md["build_tool"], "--build-tool-version", md["build_tool_version"],
        "--img-os", md["img_os"], "--img-kernel", md["img_kernel"], "--output", str(out),
    )  # fmt: skip
    assert status == 0, err
    assert (
        hashlib.sha256(out.read_bytes()).hexdigest()
        == json.loads((DATA / "eif_A" / "expected.json").read_text())["sha256"]
    )


def _self_signed(tmp_path: Path) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-signer")])
    import datetime

    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA384())
    )  # fmt: skip
    key_path, cert_path = tmp_path / "key.pem", tmp_path / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path, cert.public_bytes(serialization.Encoding.DER)


def test_signed_build_has_kat1_pcrs_and_pcr8_of_the_certificate(tmp_path: Path) -> None:
    key, cert, der = _self_signed(tmp_path)
    out = tmp_path / "signed.eif"
    status, result, err = run_cli("trustdial", *_kat1_args(out), "--sign-key", str(key), "--sign-cert", str(cert))
    assert status == 0, err
    kat1 = json.loads((DATA / "kat1.rust.measurements.json").read_text())
    assert (result["PCR0"], result["PCR1"], result["PCR2"]) == (kat1["PCR0"], kat1["PCR1"], kat1["PCR2"])
    assert result["PCR8"] == _pcr(der)


def test_signature_section_layout_matches_upstream_structure(tmp_path: Path) -> None:
    key, cert, _ = _self_signed(tmp_path)
    out = tmp_path / "signed.eif"
    assert run_cli("trustdial", *_kat1_args(out), "--sign-key", str(key), "--sign-cert", str(cert))[0] == 0
    data = out.read_bytes()
    kat1 = (DATA / "kat1.rust.eif").read_bytes()
    # everything before the signature section is kat1 apart from the header table and CRC
    assert data[548:16449] == kat1[548:]
    section = cbor2.loads(data[16449 + 12 :])
    assert bytes(section[0]["signing_certificate"]) == cert.read_bytes()
    cose = cbor2.loads(bytes(section[0]["signature"]))
    assert cose[0] == bytes.fromhex("a1013822") and cose[1] == {}
    payload = cbor2.loads(cose[2])
    assert payload == {"register_index": 0, "register_value": list(bytes.fromhex(measure_eif(out).pcr0))}
    assert len(cose[3]) == 96


def test_signing_encoder_reproduces_upstream_cbor_vectors() -> None:
    vectors = json.loads((DATA / "cbor_vectors.json").read_text())
    info = vectors["pcr_info"]
    encoded = cbor2.dumps({"register_index": 0, "register_value": list(bytes.fromhex(info["register_value_hex"]))})
    assert encoded.hex() == info["cbor_hex"]
    sig = vectors["pcr_signature"]
    section = cbor2.dumps(
        [{"signing_certificate": list(sig["signing_certificate"].encode()),
          "signature": list(bytes.fromhex(sig["signature_hex"]))}]
    )  # fmt: skip
    assert section.hex() == sig["cbor_hex"]


def test_signing_key_must_match_certificate(tmp_path: Path) -> None:
    key, _, _ = _self_signed(tmp_path / ".")
    other = tmp_path / "other"
    other.mkdir()
    _, cert, _ = _self_signed(other)
    with pytest.raises(BuildError) as info:
        EifSigner.from_pem_files(key.read_bytes(), cert.read_bytes())
    assert info.value.code == "EIF_BUILD_SIGNING"


_metadata = EifMetadata("n", "v")


@given(
    kernel=st.binary(min_size=1, max_size=300),
    cmdline=st.text(alphabet=st.characters(blacklist_characters="\0"), max_size=40),
    ramdisks=st.lists(st.binary(max_size=200), min_size=1, max_size=4),
    aarch64=st.booleans(),
)
def test_pcrs_of_any_build_follow_the_definitions(
    tmp_path_factory: pytest.TempPathFactory, kernel: bytes, cmdline: str, ramdisks: list[bytes], aarch64: bool
) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    (tmp / "k").write_bytes(kernel)
    paths = []
    for i, body in enumerate(ramdisks):
        (tmp / f"r{i}").write_bytes(body)
        paths.append(tmp / f"r{i}")
    arch = "aarch64" if aarch64 else "x86_64"
    write_eif(tmp / "o.eif", kernel=tmp / "k", cmdline=cmdline.encode(), ramdisks=paths, arch=arch, metadata=_metadata)
    m = measure_eif(tmp / "o.eif")
    base = kernel + cmdline.encode()
    assert m.pcr0 == _pcr(base + b"".join(ramdisks))
    assert m.pcr1 == _pcr(base + ramdisks[0])
    assert m.pcr2 == _pcr(b"".join(ramdisks[1:]))
    assert m.arch == arch
    assert len([s for s in m.sections if s.name == "ramdisk"]) == len(ramdisks)


def test_cmdline_is_taken_verbatim_including_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "k").write_bytes(b"kernel")
    (tmp_path / "r").write_bytes(b"ramdisk")
    write_eif(tmp_path / "a.eif", kernel=tmp_path / "k", cmdline=b"console=ttyS0\n", ramdisks=[tmp_path / "r"],
              arch="x86_64", metadata=_metadata)  # fmt: skip
    assert measure_eif(tmp_path / "a.eif").pcr0 == _pcr(b"kernelconsole=ttyS0\nramdisk")


def test_aarch64_sets_header_flag(tmp_path: Path) -> None:
    (tmp_path / "k").write_bytes(b"kernel")
    (tmp_path / "r").write_bytes(b"ramdisk")
    write_eif(tmp_path / "a.eif", kernel=tmp_path / "k", cmdline=b"x", ramdisks=[tmp_path / "r"], arch="aarch64",
              metadata=_metadata)  # fmt: skip
    assert (tmp_path / "a.eif").read_bytes()[6:8] == b"\x00\x01"


def test_metadata_floats_are_refused_rather_than_misformatted() -> None:
    with pytest.raises(BuildError) as info:
        EifMetadata("n", "v", docker_info={"x": 1.5}).to_bytes()
    assert info.value.code == "EIF_BUILD_METADATA"


def test_failed_build_leaves_no_output_file(tmp_path: Path) -> None:
    out = tmp_path / "out.eif"
    args = _kat1_args(out)
    args[args.index(str(DATA / "kat1.ramdisk1.cpio"))] = str(tmp_path / "missing.cpio")
    status, result, _ = run_cli("trustdial", *args)
    assert status == 2 and result["code"] == "EIF_BUILD_INPUT"
    assert list(tmp_path.iterdir()) == []


def test_build_is_identical_across_umask_locale_and_input_mtimes(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("kat1.kernel", "kat1.ramdisk0.cpio", "kat1.ramdisk1.cpio", "kat1.dockerinfo.json"):
        (inputs / name).write_bytes((DATA / name).read_bytes())
    digests = []
    for i, (umask, locale, mtime) in enumerate([("022", "C", 1), ("077", "C.UTF-8", 2_000_000_000)]):
        for f in inputs.iterdir():
            os.utime(f, (mtime, mtime))
        out = tmp_path / f"o{i}.eif"
        args = [a.replace(str(DATA), str(inputs)) for a in _kat1_args(out)]
        env = {**os.environ, "LC_ALL": locale, "LANG": locale, "TZ": "Asia/Tokyo" if i else "UTC"}
        import subprocess
        import sys

        cmd = f"umask {umask} && exec {Path(sys.executable).parent / 'trustdial'} " + " ".join(f"'{a}'" for a in args)
        subprocess.run(["sh", "-c", cmd], check=True, env=env, capture_output=True, timeout=120)
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1] == hashlib.sha256((DATA / "kat1.rust.eif").read_bytes()).hexdigest()
