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

from trustdial.pipeline.demo import print_report, run_demo


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run the hybrid pipeline demo end to end (local, no AWS)")
    parser.add_argument("--workdir", type=Path, default=Path("demo-out"), help="where to write (emptied first)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True)

    def progress(line: str) -> None:
        print(f"[demo] {line}", file=sys.stderr, flush=True)

    result = run_demo(args.workdir.resolve(), progress)
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        print_report(result)
    return 0 if result.passed else 1
