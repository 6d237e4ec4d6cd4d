"""Session fixtures for the Docker-free image build: the tools (installed by ``make image-tools``; missing tools
skip with the install command, and under CI=true that skip is a failure), a Debian package lock and kernel lock
resolved fresh in this run (so a Debian security update never turns the suite red; ``make eif`` alone insists on
the committed locks), two image builds (the reference MLP and the tiny LLM bundle as the build's MODEL and LLM)
from clean build directories sharing only the download cache, the DEV/TEST
blob set, and one EIF per build. Built once per session, shared by the reproducibility, publication and boot
tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from enclave_app.reference_models import build_mlp

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CACHE = Path(os.environ.get("TRUSTDIAL_IMAGE_CACHE", ROOT / "build" / "cache"))
SOURCE_DATE_EPOCH = 1_700_000_000
INSTALL = "apt-get install mmdebstrap qemu-system-x86 gcc libc6-dev debian-archive-keyring (as root; make image-tools)"
TOOLS = ("mmdebstrap", "qemu-system-x86_64", "gcc", "dpkg-deb", "apt-get")
FILES = ("/usr/lib/x86_64-linux-gnu/libc.a", "/usr/share/keyrings/debian-archive-keyring.gpg")
MODEL_DIMS = (16, 32, 4)
#: the LLM bundle the session builds into the image (make eif's LLM argument)
LLM = ROOT / "tests" / "data" / "llm" / "tiny"


def missing_tools() -> list[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    missing += [path for path in FILES if not Path(path).is_file()]
    if os.geteuid() != 0:
        missing.append("root (mmdebstrap --mode=root)")
    return missing


def run_json(*args: str | Path, timeout: float) -> dict[str, Any]:
    """Run a console script with --json; its progress lines pass through to the test log."""
    command = [str(BIN / str(args[0])), *map(str, args[1:]), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    sys.stderr.write(done.stderr)
    assert done.returncode == 0, f"{command} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@dataclass(frozen=True)
class Build:
    directory: Path
    summary: dict[str, Any]
    eif: Path
    eif_result: dict[str, Any]
    build_seconds: float
    eif_seconds: float


@dataclass(frozen=True)
class ImageSession:
    debian_lock: Path
    kernel_lock: Path
    model: Path
    blobs: Path
    builds: tuple[Build, Build]


@pytest.fixture(scope="session")
def image_tools() -> None:
    missing = missing_tools()
    if missing:
        reason = f"the image build and boot tests need {', '.join(missing)}; install: {INSTALL}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true, so this is a failure, not a skip: {reason}", pytrace=False)
        pytest.skip(reason)


_FAILED: list[str] = []


@pytest.fixture(scope="session")
def image_session(image_tools: None, tmp_path_factory: pytest.TempPathFactory) -> ImageSession:
    # pytest runs a failed session fixture again for every test that asks for it: fail the others at once
    if _FAILED:
        pytest.fail(f"the session image build failed in an earlier test: {_FAILED[0]}", pytrace=False)
    try:
        return _build_session(tmp_path_factory)
    except BaseException as err:
        _FAILED.append(f"{type(err).__name__}: {str(err)[:2000]}")
        raise


def _build_session(tmp_path_factory: pytest.TempPathFactory) -> ImageSession:
    base = tmp_path_factory.mktemp("image")
    debian_lock, kernel_lock = base / "debian.lock", base / "kernel.lock"
    run_json("trustdial", "image", "lock", "--kind", "rootfs", "--output", debian_lock, timeout=600)
    run_json("trustdial", "image", "lock", "--kind", "kernel", "--output", kernel_lock, timeout=600)
    model = base / "model.onnx"
    model.write_bytes(build_mlp(MODEL_DIMS, seed=3))
    blobs = base / "dev-blobs"
    run_json("trustdial", "image", "dev-blobs", "--kernel-lock", kernel_lock, "--cache", CACHE, "--output", blobs,
             timeout=900)  # fmt: skip
    builds = []
    for name in ("first", "second"):
        directory = base / name
        started = time.monotonic()
        summary = run_json("trustdial", "image", "build", "--debian-lock", debian_lock, "--model", model,
                           "--llm", LLM, "--output-dir", directory, "--cache", CACHE,
                           "--source-date-epoch", str(SOURCE_DATE_EPOCH), timeout=1800)  # fmt: skip
        built = time.monotonic()
        eif = directory / "enclave.eif"
        eif_result = run_json("trustdial", "eif", "image", "--blobs", blobs, "--allow-unpinned-blobs",
                              "--image", directory / "image.oci.tar", "--output", eif, timeout=900)  # fmt: skip
        builds.append(Build(directory, summary, eif, eif_result, built - started, time.monotonic() - built))
        sys.stderr.write(f"image build {name}: {built - started:.0f} s, EIF {time.monotonic() - built:.0f} s\n")
    record_measurements(
        {
            "builds": [
                {**b.summary, "eif": b.eif_result, "eif_size": b.eif.stat().st_size,
                 "layer_bytes": {n: (b.directory / n).stat().st_size for n in ("rootfs.tar", "python.tar", "app.tar")},
                 "build_seconds": round(b.build_seconds, 1), "eif_seconds": round(b.eif_seconds, 1)}
                for b in builds
            ]
        }
    )  # fmt: skip
    return ImageSession(debian_lock, kernel_lock, model, blobs, (builds[0], builds[1]))


MEASUREMENTS = ROOT / "build" / "image-tests.json"


def record_measurements(fields: dict[str, Any]) -> None:
    """Keep this run's figures (digests, PCRs, timings) in build/image-tests.json for the record."""
    MEASUREMENTS.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(MEASUREMENTS.read_text()) if MEASUREMENTS.is_file() and "builds" not in fields else {}
    MEASUREMENTS.write_text(json.dumps({**previous, **fields}, indent=2, sort_keys=True) + "\n")
