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
    assert status == 2 and out["error"] == "BLOB_UNPINNED"
    assert not (tmp_path / "e.eif").exists()


def test_missing_blob_is_reported(blobs: Path, image: Path, tmp_path: Path) -> None:
    (blobs / "nsm.ko").unlink()
    status, out, _ = run_cli("trustdial", "eif", "image", "--blobs", str(blobs), "--image", str(image), "--output",
                             str(tmp_path / "e.eif"), "--allow-unpinned-blobs")  # fmt: skip
    assert status == 2 and out["error"] == "BLOB_MISSING"


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
