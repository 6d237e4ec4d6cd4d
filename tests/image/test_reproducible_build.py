"""Two Docker-free builds from clean build directories (sharing only the download cache, whose files are checked
against the locks on every use) give byte-identical layers, OCI archive and EIF, hence equal PCRs; the EIF's
PCR2 is the customer ramdisk alone, recomputed here with hashlib from the EIF's own section; the customer
ramdisk carries the production command unchanged; and the manifest records what went into PCR2, including the
model and LLM bundle the command serves."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

from image.conftest import ROOT, ImageSession, run_json
from image.qemu_boot import RAMDISK, eif_sections
from infra.image.dockerfile_spec import parse_dockerfile

# the session build (fresh locks, two image builds, two EIFs) runs in the first test's setup
pytestmark = pytest.mark.timeout(2400)
OUTPUTS = ("rootfs.tar", "python.tar", "app.tar", "image.oci.tar", "enclave.eif")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def test_two_clean_builds_are_byte_identical(image_session: ImageSession) -> None:
    first, second = image_session.builds
    assert first.directory != second.directory
    digests = {name: (_sha256(first.directory / name), _sha256(second.directory / name)) for name in OUTPUTS}
    print(json.dumps({name: pair[0] for name, pair in digests.items()}, indent=2))
    assert {name: a for name, (a, _) in digests.items()} == {name: b for name, (_, b) in digests.items()}
    for pcr in ("PCR0", "PCR1", "PCR2"):
        assert first.eif_result[pcr] == second.eif_result[pcr]
    assert first.summary["rootfs_sha256"] == digests["rootfs.tar"][0]
    assert first.summary["oci_archive_sha256"] == digests["image.oci.tar"][0]


def test_pcr2_is_the_customer_ramdisk_measured_independently(image_session: ImageSession) -> None:
    build = image_session.builds[0]
    ramdisks = [data for kind, data in eif_sections(build.eif) if kind == RAMDISK]
    assert len(ramdisks) == 2  # bootstrap (dev blobs), customer
    pcr2 = hashlib.sha384(bytes(48) + hashlib.sha384(ramdisks[1]).digest()).hexdigest()
    assert build.eif_result["PCR2"] == pcr2


def test_the_customer_ramdisk_holds_the_production_command(image_session: ImageSession) -> None:
    customer = [data for kind, data in eif_sections(image_session.builds[0].eif) if kind == RAMDISK][1]
    spec = parse_dockerfile(ROOT / "Dockerfile.enclave")
    assert spec.cmd[:3] == ("python", "-m", "enclave_app") and "vsock:5000" in spec.cmd and "device" in spec.cmd
    expected = "".join(f"{arg}\n" for arg in spec.cmd).encode()
    tail = customer[-8192:]
    name_at = tail.rindex(b"cmd\x00")
    header = tail[name_at - 110 : name_at]
    assert header[:6] == b"070701"
    size = int(header[54:62], 16)
    data_at = (name_at - 110 + 110 + 4 + 3) & ~3
    assert tail[data_at : data_at + size] == expected
    assert struct.calcsize(">Q") == 8  # newc sizes are hex text, not binary: nothing else to decode


def test_the_manifest_records_what_went_into_pcr2(image_session: ImageSession, tmp_path: Path) -> None:
    build = image_session.builds[0]
    manifest = tmp_path / "manifest.json"
    run_json("trustdial", "measurements", "create", "--eif", build.eif, "--source-revision", "test",
             "--image-build", build.directory / "build.json", "--output", manifest, timeout=300)  # fmt: skip
    image = json.loads(manifest.read_text())["image"]
    assert image["debian_lock_sha256"] == _sha256(image_session.debian_lock)
    assert image["rootfs_sha256"] == _sha256(build.directory / "rootfs.tar")
    assert image["runtime_lock_sha256"] == _sha256(ROOT / "infra" / "image" / "enclave" / "requirements.lock")
    # what the CMD serves: the model file's sha256 and the LLM bundle's digest as its maker recorded it
    # (tests/data/llm/PROVENANCE.md), by the names serve gives them
    assert json.loads(manifest.read_text())["models"] == {
        "model": {"sha256": _sha256(image_session.model)},
        "tiny": {"sha256": "9017a85ee937e822014c434849cf9a1b130a6f18dfd4dbe18bb602956cdda688"},
    }
    index = json.loads(_oci_member(build.directory / "image.oci.tar", "index.json"))
    manifest_digest = index["manifests"][0]["digest"]
    oci_manifest = json.loads(_oci_member(build.directory / "image.oci.tar", f"blobs/sha256/{manifest_digest[7:]}"))
    assert image["digest"] == oci_manifest["config"]["digest"]


def _oci_member(archive: Path, name: str) -> bytes:
    import tarfile

    with tarfile.open(archive) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()
