"""The publication path on this machine, on the session build: `make pcrs`, then `make publication-check`
(`trustdial measurements create --image-build` → `sign` → `trustdial-verify measurements --eif` →
`trustdial-verify eif`), and the verifier refuses the manifest for an EIF that is not the one measured."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from image.conftest import ROOT, ImageSession

pytestmark = pytest.mark.timeout(2400)
BIN = Path(sys.executable).parent


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    assert make is not None
    return subprocess.run([make, "-s", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=600)


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_make_pcrs_then_publication_check(image_session: ImageSession, tmp_path: Path) -> None:
    build = image_session.builds[0]
    pcrs = _make("pcrs", f"EIF={build.eif}")
    assert pcrs.returncode == 0, pcrs.stderr
    printed = _json_lines(pcrs.stdout)[-1]
    names = ("PCR0", "PCR1", "PCR2")
    assert {k: printed[k] for k in names} == {k: build.eif_result[k] for k in names}

    done = _make("publication-check", f"EIF={build.eif}", f"IMAGE_DIR={build.directory}", f"EIF_DIR={tmp_path}",
                 f"BLOBS={image_session.blobs}")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    results = _json_lines(done.stdout)
    assert len(results) == 4 and all(r.get("ok", r.get("valid")) is True for r in results), done.stdout
    verified = results[2]
    assert verified["eif_checked"] is True
    assert verified["manifest"]["pcrs"] == {**{k: build.eif_result[k] for k in names}, "PCR8": None}  # type: ignore[index]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["image"]["rootfs_sha256"] == build.summary["rootfs_sha256"]
    assert manifest["blobs"]["cmdline"]["sha256"] == build.eif_result["blobs_sha256"]["cmdline"]

    other = ROOT / "tests" / "data" / "eif" / "kat1.rust.eif"  # a genuine EIF, but not the one measured
    refused = subprocess.run(
        [str(BIN / "trustdial-verify"), "measurements", str(tmp_path / "manifest.cose"),
         "--public-key", str(tmp_path / "manifest-key.pub.pem"), "--eif", str(other), "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["code"] == "MANIFEST_EIF_MISMATCH"
