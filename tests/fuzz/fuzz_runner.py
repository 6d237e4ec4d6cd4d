"""What every atheris harness here does after defining its target: seed a fresh corpus directory,
default to 100k runs, bound input size and memory, and fuzz."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris


def fuzz(
    target: Callable[[bytes], None], seed_corpus: Callable[[Path], None], *, what: str, max_len: int, prefix: str
) -> None:
    corpus = Path(tempfile.mkdtemp(prefix=prefix))
    seed_corpus(corpus)
    argv = list(sys.argv)
    if not any(arg.startswith("-runs=") for arg in argv):
        argv.append("-runs=100000")
    argv += [f"-max_len={max_len}", "-rss_limit_mb=4096", str(corpus)]
    print(f"fuzzing {what}; seed corpus {corpus} ({len(list(corpus.iterdir()))} files)", flush=True)
    atheris.Setup(argv, target)
    atheris.Fuzz()
