"""``trustdial measurements create --image-build`` pins what the image serves: build.json's ``models`` (each model
file's sha256 and each LLM bundle's digest, recorded by ``trustdial image build``) go into the manifest's
``models``; ``--models`` adds entries beside them, and one that names a served model with another digest is refused
(the manifest must pin nothing but what is in the measured image)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

EIF = Path(__file__).resolve().parents[1] / "data" / "eif" / "kat1.rust.eif"
BIN = Path(sys.executable).parent
SERVED = {"model": {"sha256": "ab" * 32}, "tiny": {"sha256": "cd" * 32}}


def _create(tmp_path: Path, models: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
    build = tmp_path / "build.json"
    image = {"debian_lock_sha256": "01" * 32, "rootfs_sha256": "02" * 32, "runtime_lock_sha256": "03" * 32}
    build.write_text(json.dumps({**image, "image_config_digest": "sha256:" + "04" * 32, "models": SERVED}))
    extra = []
    if models is not None:
        (tmp_path / "models.json").write_text(json.dumps(models))
        extra = ["--models", str(tmp_path / "models.json")]
    done = subprocess.run(
        [str(BIN / "trustdial"), "measurements", "create", "--eif", str(EIF), "--source-revision", "test",
         "--image-build", str(build), *extra, "--output", str(tmp_path / "manifest.json"), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done.returncode, json.loads(done.stdout)


def test_the_served_models_are_pinned(tmp_path: Path) -> None:
    status, _ = _create(tmp_path, None)
    assert status == 0
    assert json.loads((tmp_path / "manifest.json").read_text())["models"] == SERVED


def test_other_models_are_added_beside_them(tmp_path: Path) -> None:
    sealed = {"secret": {"sha256": "ef" * 32}}
    status, _ = _create(tmp_path, {**sealed, "tiny": SERVED["tiny"]})
    assert status == 0
    assert json.loads((tmp_path / "manifest.json").read_text())["models"] == {**SERVED, **sealed}


def test_a_served_model_under_another_digest_is_refused(tmp_path: Path) -> None:
    status, report = _create(tmp_path, {"tiny": {"sha256": "00" * 32}})
    assert (status, report["code"]) == (2, "MANIFEST_CREATE_INPUT")
    assert "tiny" in report["reason"] and not (tmp_path / "manifest.json").exists()
