"""``trustdial eif image``: blobs + image archive → EIF, reproducible, blobs pinned."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eif.conftest import DATA, run_cli
from eif.tarbuild import docker_save
from infra.image.blobs import PINNED_RELEASES

CUST = DATA / "cust_A"
CONFIG_LINE = "# Linux/x86_64 4.14.256-209.484.amzn2.x86_64 Kernel Configuration"


def _pcr(content: bytes) -> str:
    return hashlib.sha384(bytes(48) + hashlib.sha384(content).digest()).hexdigest()


@pytest.fixture
def blobs(tmp_path: Path) -> Path:
    folder = tmp_path / "blobs"
    folder.mkdir()
    (folder / "bzImage").write_bytes(b"synthetic kernel " * 100)
    (folder / "bzImage.config").write_text(f"#\n# Automatically generated file; DO NOT EDIT.\n{CONFIG_LINE}\n")
    (folder / "init").write_bytes((DATA / "boot_A" / "init").read_bytes())
    (folder / "nsm.ko").write_bytes((DATA / "boot_A" / "nsm.ko").read_bytes())
    (folder / "cmdline").write_text("reboot=k panic=30 console=ttyS0\n")
    return folder


@pytest.fixture
def image(tmp_path: Path) -> Path:
    inspect = json.loads((CUST / "image_inspect.json").read_text())
    archive = tmp_path / "image.tar"
    config = {"architecture": "amd64", "os": "linux", "config": inspect["Config"]}
    docker_save(archive, [(CUST / "layer1.tar").read_bytes(), (CUST / "layer2.tar").read_bytes()], config)
    return archive


def test_unpinned_blobs_are_refused_by_default(blobs: Path, image: Path, tmp_path: Path) -> None:
    status, out, _ = run_cli("trustdial", "eif", "image", "--blobs", str(blobs), "--image", str(image), "--output",
                             str(tmp_path / "e.eif"))  # fmt: skip
    assert status == 2 and out["code"] == "BLOB_UNPINNED"
    assert not (tmp_path / "e.eif").exists()


def test_missing_blob_is_reported(blobs: Path, image: Path, tmp_path: Path) -> None:
    (blobs / "nsm.ko").unlink()
    status, out, _ = run_cli("trustdial", "eif", "image", "--blobs", str(blobs), "--image", str(image), "--output",
                             str(tmp_path / "e.eif"), "--allow-unpinned-blobs")  # fmt: skip
    assert status == 2 and out["code"] == "BLOB_MISSING"


def test_image_build_pcrs_follow_from_the_ramdisk_known_answers(blobs: Path, image: Path, tmp_path: Path) -> None:
    out_path = tmp_path / "e.eif"
    status, out, err = run_cli("trustdial", "eif", "image", "--blobs", str(blobs), "--image", str(image),
                               "--output", str(out_path), "--allow-unpinned-blobs")  # fmt: skip
    assert status == 0, err
    kernel = (blobs / "bzImage").read_bytes()
    cmdline = b"reboot=k panic=30 console=ttyS0"  # trimmed as nitro-cli trims it
    boot = (DATA / "boot_A" / "boot_A.cpio").read_bytes()
    customer = (CUST / "cust_A.cpio").read_bytes()
    assert out["PCR1"] == _pcr(kernel + cmdline + boot)
    assert out["PCR2"] == _pcr(customer) == json.loads((CUST / "expected.json").read_text())["pcr2_if_sole_app_ramdisk"]
    assert out["PCR0"] == _pcr(kernel + cmdline + boot + customer)
    assert out["blobs_release"] is None
    metadata = run_cli("trustdial-verify", "eif", str(out_path))[1]["metadata"]
    assert metadata["BuildMetadata"]["OperatingSystem"] == "Linux"
    assert metadata["BuildMetadata"]["KernelVersion"] == "4.14.256"


def test_two_image_builds_are_bit_identical_across_umask_and_locale(blobs: Path, image: Path, tmp_path: Path) -> None:
    digests = []
    for i, (umask, locale) in enumerate([("022", "C"), ("077", "C.UTF-8")]):
        os.utime(blobs / "init", (1 + i * 10**9, 1 + i * 10**9))
        out = tmp_path / f"e{i}.eif"
        cmd = (f"umask {umask} && exec {Path(sys.executable).parent / 'trustdial'} eif image --blobs {blobs} "
               f"--image {image} --output {out} --allow-unpinned-blobs")  # fmt: skip
        subprocess.run(["sh", "-c", cmd], check=True, capture_output=True, timeout=120,
                       env={**os.environ, "LC_ALL": locale, "TZ": "America/Lima" if i else "UTC"})  # fmt: skip
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_pinned_releases_cover_both_architectures() -> None:
    assert {r.rsplit("-", 1)[1] for r in PINNED_RELEASES} == {"x86_64", "aarch64"}
    for pins in PINNED_RELEASES.values():
        assert set(pins) == {"init", "nsm.ko", "cmdline"}
        assert all(len(v) == 64 for v in pins.values())


def test_arm64_image_builds_an_aarch64_eif_from_the_image_kernel(tmp_path: Path, image: Path) -> None:
    blobs = tmp_path / "arm-blobs"
    blobs.mkdir()
    (blobs / "Image").write_bytes(b"arm64 kernel image " * 50)
    (blobs / "init").write_bytes(b"init for arm")
    (blobs / "nsm.ko").write_bytes(b"nsm for arm")
    (blobs / "cmdline").write_text(
        "reboot=k panic=30 pci=off nomodules console=ttyS0 random.trust_cpu=on root=/dev/ram0\n"
    )
    inspect = json.loads((CUST / "image_inspect.json").read_text())
    arm_image = tmp_path / "arm.tar"
    config = {"architecture": "arm64", "os": "linux", "config": inspect["Config"]}
    docker_save(arm_image, [(CUST / "layer1.tar").read_bytes(), (CUST / "layer2.tar").read_bytes()], config)
    out_path = tmp_path / "arm.eif"
    status, out, err = run_cli("trustdial", "eif", "image", "--blobs", str(blobs), "--image", str(arm_image),
                               "--output", str(out_path), "--allow-unpinned-blobs")  # fmt: skip
    assert status == 0, err
    assert out["arch"] == "aarch64"
    assert out_path.read_bytes()[6:8] == b"\x00\x01"
    assert out["PCR2"] == json.loads((CUST / "expected.json").read_text())["pcr2_if_sole_app_ramdisk"]
    kernel = (blobs / "Image").read_bytes()
    cmdline = b"reboot=k panic=30 pci=off nomodules console=ttyS0 random.trust_cpu=on root=/dev/ram0"
    assert out["PCR0"].startswith(
        _pcr(kernel + cmdline + _bootstrap(b"init for arm", b"nsm for arm") + (CUST / "cust_A.cpio").read_bytes())[:16]
    )


def _bootstrap(init: bytes, nsm: bytes) -> bytes:
    """The bootstrap cpio written independently from the listed layout (boot_A's entry table)."""

    def entry(ino: int, mode: int, nlink: int, name: bytes, data: bytes) -> bytes:
        fields = (ino, mode, 0, 0, nlink, 1492533000, len(data), 3, 1, 0, 0, len(name) + 1, 0)
        head = b"070701" + b"".join(b"%08x" % f for f in fields) + name + b"\0"
        head += bytes(-len(head) % 4)
        return head + data + bytes(-len(data) % 4)

    body = entry(721, 0o40755, 2, b"dev", b"") + entry(722, 0o100755, 1, b"init", init)
    body += entry(723, 0o100755, 1, b"nsm.ko", nsm)
    trailer = b"070701" + b"".join(b"%08x" % f for f in (724, 0, 0, 0, 1, 0, 0, 3, 1, 0, 0, 11, 0)) + b"TRAILER!!!\0"
    body += trailer + bytes(-len(trailer) % 4)
    return body + bytes(-len(body) % 512)


def test_independent_bootstrap_encoder_agrees_with_boot_a() -> None:
    boot = DATA / "boot_A"
    assert (
        _bootstrap((boot / "init").read_bytes(), (boot / "nsm.ko").read_bytes()) == (boot / "boot_A.cpio").read_bytes()
    )


def test_ramdisk_from_image_uses_the_archive_config_without_config_flag(image: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.cpio"
    status, result, err = run_cli("trustdial", "eif", "ramdisk", "--image", str(image), "--output", str(out))
    assert status == 0, err
    assert result["sha256"] == json.loads((CUST / "expected.json").read_text())["sha256"]


def test_manifest_records_blob_and_image_digests(blobs: Path, image: Path, tmp_path: Path) -> None:
    eif = tmp_path / "e.eif"
    assert run_cli("trustdial", "eif", "image", "--blobs", str(blobs), "--image", str(image), "--output", str(eif),
                   "--allow-unpinned-blobs")[0] == 0  # fmt: skip
    manifest = tmp_path / "m.json"
    status, _, err = run_cli(
        "trustdial", "measurements", "create", "--eif", str(eif), "--source-revision", "abc",
        "--blobs-dir", str(blobs), "--image-archive", str(image), "--output", str(manifest),
    )  # fmt: skip
    assert status == 0, err
    doc = json.loads(manifest.read_text())
    assert doc["blobs"]["init"] == {"sha256": hashlib.sha256((blobs / "init").read_bytes()).hexdigest()}
    assert doc["blobs"]["kernel"] == {"sha256": hashlib.sha256((blobs / "bzImage").read_bytes()).hexdigest()}
    import tarfile

    with tarfile.open(image) as t:
        config = t.extractfile("config.json").read()  # type: ignore[union-attr]
    assert doc["image"]["digest"] == "sha256:" + hashlib.sha256(config).hexdigest()
