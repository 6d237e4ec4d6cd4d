"""``trustdial-verify eif FILE [--json]``: validate an EIF and print its PCRs and digests."""

from __future__ import annotations

import argparse
from typing import Any

from trustdial_verifier._internal.cli.report import run_check
from trustdial_verifier.verify import recompute_pcrs


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eif",
        help="validate an Enclave Image File and compute PCR0/1/2/8",
        description="Validate an EIF (header, sections, CRC, signature) and print PCR0, PCR1, PCR2, PCR8 "
        "(null when unsigned), the file's sha256/sha384, arch, sections and metadata.",
    )
    parser.add_argument("file", help="path to the .eif file")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    def check() -> dict[str, Any]:
        return recompute_pcrs(args.file).as_dict()

    return run_check(check, as_json=args.json)
