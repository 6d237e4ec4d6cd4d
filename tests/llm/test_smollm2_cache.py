"""``python -m trustdial.llm.smollm2 --check`` (what ``make llm-bundle`` asks before it installs or builds anything):
no bundle is 1, a bundle matching its manifest is 0, a cached bundle with a changed file is 2 and is not rebuilt
over; a build that was interrupted leaves only its partial directory, which is not taken for a bundle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from llm.stack import TINY


def _check(cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trustdial.llm.smollm2", "--check"], capture_output=True, text=True, timeout=60,
        env={**os.environ, "TRUSTDIAL_LLM_CACHE": str(cache)}, check=False,
    )  # fmt: skip


def test_check_tells_none_cached_and_altered_apart(tmp_path: Path) -> None:
    assert _check(tmp_path).returncode == 1
    shutil.copytree(TINY, tmp_path / ".smollm2-int4.partial")  # an interrupted build's leftovers
    assert _check(tmp_path).returncode == 1
    shutil.copytree(TINY, tmp_path / "smollm2-int4")  # stands in for a built bundle: same manifest format
    done = _check(tmp_path)
    assert done.returncode == 0 and "cached" in done.stderr
    with (tmp_path / "smollm2-int4" / "genai_config.json").open("a") as config:
        config.write(" ")
    done = _check(tmp_path)
    assert done.returncode == 2 and "BUNDLE_" in done.stderr and "delete it" in done.stderr
