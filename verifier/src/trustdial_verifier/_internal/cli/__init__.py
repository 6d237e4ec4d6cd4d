"""``trustdial-verify``: one subcommand per kind of evidence.

Exit status: 0 valid, 1 rejected, 2 usage or I/O error. Each subcommand lives in its own
module exposing ``register(subparsers)``; the module list below is the whole registry.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from trustdial_verifier._internal.cli.arguments import JsonAwareParser, parse_or_refuse
from trustdial_verifier._internal.cli.report import EXIT_USAGE

COMMAND_MODULES: tuple[str, ...] = (
    # one line per subcommand module, e.g. "trustdial_verifier._internal.cli.attestation_command",
    "trustdial_verifier._internal.cli.attestation_command",
    "trustdial_verifier._internal.cli.chat_command",
    "trustdial_verifier._internal.cli.eif_command",
    "trustdial_verifier._internal.cli.measurements_command",
    "trustdial_verifier._internal.cli.proof_command",
    "trustdial_verifier._internal.cli.proxy_command",
    "trustdial_verifier._internal.cli.receipt_command",
)


def build_parser() -> argparse.ArgumentParser:
    parser = JsonAwareParser(
        prog="trustdial-verify",
        description="Check trustdial evidence offline. Exit 0 valid, 1 rejected, 2 usage or I/O error.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_or_refuse(build_parser(), argv, {"valid": False})
    if args is None:
        return EXIT_USAGE
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
