"""The runtime lock's wheels as an image layer, for Debian's own python3.

The wheels are fetched with ``pip download --require-hashes --only-binary=:all: --no-deps`` into
a cache that builds may share (pip checks every file against the lock's hash), installed with
``pip install --no-index --no-compile --target`` into a staging directory, and tarred
deterministically below ``usr/local/lib/python3.11/dist-packages``: a directory on Debian
python3.11's ``sys.path`` that no Debian package writes to. Console scripts (``bin/``, whose
``#!`` line would name the build machine's interpreter) are left out; the image runs
``python -m``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from infra.image.errors import BuildError
from infra.image.layer_tar import tree_files, write_layer

SITE_DIR = "usr/local/lib/python3.11/dist-packages"
PIP_TIMEOUT_S = 600


def _pip(args: list[str], what: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as err:
        raise BuildError("WHEELS_FAILED", f"{what} did not finish within {PIP_TIMEOUT_S} s") from err
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-10:])
        raise BuildError("WHEELS_FAILED", f"{what} failed (exit {done.returncode}):\n{tail}")


def fetch_wheels(lock: Path, cache: Path) -> None:
    if sys.version_info[:2] != (3, 11):
        raise BuildError("WHEELS_FAILED", "the runtime lock holds CPython 3.11 wheels: run the build with Python 3.11")
    cache.mkdir(parents=True, exist_ok=True)
    sys.stderr.write(f"wheels: pip download --require-hashes -r {lock}...\n")
    _pip(["download", "--quiet", "--no-deps", "--require-hashes", "--only-binary=:all:", "--dest", str(cache),
          "-r", str(lock)], "pip download")  # fmt: skip


def build_python_layer(lock: Path, cache: Path, output: Path, *, workdir: Path, mtime: int) -> None:
    fetch_wheels(lock, cache)
    staging = workdir / "site-packages"
    if staging.exists():
        shutil.rmtree(staging)
    sys.stderr.write("wheels: pip install --no-index --no-compile --target (staging)...\n")
    _pip(["install", "--quiet", "--no-index", "--find-links", str(cache), "--no-deps", "--require-hashes",
          "--only-binary=:all:", "--no-compile", "--target", str(staging), "-r", str(lock)], "pip install")  # fmt: skip
    shutil.rmtree(staging / "bin", ignore_errors=True)
    write_layer(output, tree_files(staging, SITE_DIR), mtime)
    shutil.rmtree(staging)
