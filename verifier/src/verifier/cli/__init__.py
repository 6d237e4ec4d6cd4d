"""``trustdial-verify``: one subcommand per kind of evidence.

Exit status: 0 valid, 1 rejected, 2 usage or I/O error. Each subcommand lives in its own
module exposing ``register(subparsers)``; the module list below is the whole registry.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from verifier.cli.report import EXIT_USAGE

COMMAND_MODULES: tuple[str, ...] = (
    # one line per subcommand module, e.g. "verifier.cli.attestation_command",
    "verifier.cli.attestation_command",
    "verifier.cli.eif_command",
    "verifier.cli.measurements_command",
    "verifier.cli.proof_command",
    "verifier.cli.receipt_command",
)


class ArgumentsError(Exception):
    """argparse refused the command line (unknown flag, a value of the wrong type, ...)."""

    def __init__(self, prog: str, usage: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog
        self.usage = usage
        self.message = message


class _Parser(argparse.ArgumentParser):
    """Raises instead of printing and exiting, so that ``main`` can answer with one JSON object when
    ``--json`` was asked for (subcommand parsers are made of the same class)."""

    def error(self, message: str) -> NoReturn:
        raise ArgumentsError(self.prog, self.format_usage(), message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trustdial-verify",
        description="Check trustdial evidence offline. Exit 0 valid, 1 rejected, 2 usage or I/O error.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(words)
    except ArgumentsError as err:
        if "--json" in words:  # machines read one JSON object from stdout, whatever went wrong
            print(json.dumps({"valid": False, "code": "BAD_ARGUMENTS", "reason": err.message}))
        else:
            sys.stderr.write(f"{err.usage}{err.prog}: error: {err.message}\n")
        return EXIT_USAGE
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
