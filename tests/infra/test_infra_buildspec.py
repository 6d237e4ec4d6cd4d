"""The image build's PCR drift check, run under bash against two builds' reports."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from infra_testkit import CURRENT_PCRS, NEXT_PCRS

from infra.cdk.buildspec import BUILD_DIRS, PCRS_ONLY, image_build_spec


def report(pcrs: dict[str, str], sha384: str = "a" * 96, valid: bool = True) -> str:
    fields = {"PCR0": pcrs["pcr0"], "PCR1": pcrs["pcr1"], "PCR2": pcrs["pcr2"], "PCR8": None}
    return json.dumps({"valid": valid, **fields, "sha384": sha384, "arch": "x86_64"})


def pcrs_only(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", PCRS_ONLY], input=text, capture_output=True, text=True, timeout=30)


def drift_check(tmp_path: Path, first: str, second: str) -> subprocess.CompletedProcess[str]:
    for directory, text in zip(BUILD_DIRS, (first, second), strict=True):
        (tmp_path / directory).mkdir(parents=True)
        filtered = pcrs_only(text)
        assert filtered.returncode == 0, filtered.stderr
        (tmp_path / directory / "pcrs.json").write_text(filtered.stdout)
    commands = image_build_spec()["phases"]["build"]["commands"]
    (check,) = [c for c in commands if "PCR drift" in c]
    return subprocess.run(["bash", "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=30)


def test_identical_pcrs_pass_the_drift_check(tmp_path: Path) -> None:
    done = drift_check(tmp_path, report(CURRENT_PCRS), report(CURRENT_PCRS, sha384="b" * 96))
    assert done.returncode == 0, done.stderr


def test_different_pcrs_fail_the_build(tmp_path: Path) -> None:
    changed = {**CURRENT_PCRS, "pcr2": NEXT_PCRS["pcr2"]}
    done = drift_check(tmp_path, report(CURRENT_PCRS), report(changed))
    assert done.returncode == 1
    assert "PCR drift" in done.stderr and NEXT_PCRS["pcr2"] in done.stderr


def test_report_without_pcrs_fails_instead_of_comparing_nothing() -> None:
    assert pcrs_only(json.dumps({"valid": True, "sha384": "a" * 96})).returncode != 0


def test_rejected_eif_report_fails() -> None:
    assert pcrs_only(report(CURRENT_PCRS, valid=False)).returncode != 0


def test_the_published_manifest_records_each_builds_own_image_summary() -> None:
    commands = image_build_spec()["phases"]["build"]["commands"]
    builds = [c for c in commands if c.startswith("make eif")]
    assert builds == [f"make eif EIF_DIR={d} IMAGE_DIR={d}/image" for d in BUILD_DIRS]
    (create,) = [c for c in commands if "trustdial measurements create" in c]
    # build.json carries the served models (the LLM bundle digest among them): without it the manifest pins none
    assert f"--eif {BUILD_DIRS[0]}/enclave.eif --image-build {BUILD_DIRS[0]}/image/build.json" in create
