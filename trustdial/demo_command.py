"""``trustdial demo`` (``make demo``): the hybrid pipeline end to end on local defaults, no AWS.
See :mod:`trustdial.pipeline.demo`. Exit 0 only if the composite receipt verified (and a
tampered copy was rejected)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from infra.image.command_output import refuse
from trustdial.pipeline.demo import print_report, run_demo


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run the hybrid pipeline demo end to end (local, no AWS)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("demo-out"),
        help="where to write: a new or empty directory, or an earlier demo's (emptied first)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.set_defaults(run=run)


#: written into every demo workdir: only a directory holding it (or an empty one) is emptied
MARKER = ".trustdial-demo"


def run(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir
    if workdir.exists() and not workdir.is_dir():
        refuse("DEMO_WORKDIR_NOT_A_DIRECTORY", f"{workdir} exists and is not a directory", args.json)
        return 2
    if workdir.is_dir() and any(workdir.iterdir()) and not (workdir / MARKER).is_file():
        refuse(
            "DEMO_WORKDIR_NOT_OURS",
            f"{workdir} holds files no demo wrote (no {MARKER}); choose a new or empty --workdir",
            args.json,
        )
        return 2
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("written by trustdial demo: this directory is emptied by the next run\n")

    def progress(line: str) -> None:
        print(f"[demo] {line}", file=sys.stderr, flush=True)

    result = run_demo(workdir.resolve(), progress)
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        print_report(result)
    return 0 if result.passed else 1
