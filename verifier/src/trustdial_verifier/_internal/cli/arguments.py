"""Command-line parsing that keeps the ``--json`` contract when argparse refuses the command line
(an unknown flag, a value of the wrong type, a missing argument): one JSON object on stdout, exit 2,
instead of argparse's usage text. Used by ``trustdial-verify`` and by the operator's ``trustdial``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

BAD_ARGUMENTS = "BAD_ARGUMENTS"


class ArgumentsError(Exception):
    """argparse refused the command line."""

    def __init__(self, prog: str, usage: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog
        self.usage = usage
        self.message = message


class JsonAwareParser(argparse.ArgumentParser):
    """Raises :class:`ArgumentsError` instead of printing and exiting (subcommand parsers are made
    of the same class); ``--help`` still prints and exits 0."""

    def error(self, message: str) -> NoReturn:
        raise ArgumentsError(self.prog, self.format_usage(), message)


def parse_or_refuse(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, refusal: Mapping[str, Any]
) -> argparse.Namespace | None:
    """The parsed arguments, or None after reporting a refused command line: with ``--json`` as
    ``{**refusal, "code": "BAD_ARGUMENTS", "reason": ...}`` on stdout, else usage and error on stderr."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        return parser.parse_args(words)
    except ArgumentsError as err:
        if "--json" in words:
            print(json.dumps({**refusal, "code": BAD_ARGUMENTS, "reason": err.message}, allow_nan=False))
        else:
            sys.stderr.write(f"{err.usage}{err.prog}: error: {err.message}\n")
        return None
