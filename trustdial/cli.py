"""``trustdial``: the operator's command line (serve, gateway, zk, prover, eif, measurements,
pipeline, demo). Each command group lives next to the code it drives and exposes
``register(subparsers)``; the module list below is the whole registry."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from verifier.cli.arguments import JsonAwareParser, parse_or_refuse

COMMAND_MODULES: tuple[str, ...] = (
    # one line per command module, e.g. "enclave_app.serve_command",
    "trustdial.demo_command",
    "infra.image.eif_command",
    "infra.measurements.measurements_command",
    "prover.zk_command",
    "prover.prover_command",
    "enclave_app.serve_command",
    "enclave_app.gateway_command",
    "trustdial.pipeline.command",
)


def build_parser() -> argparse.ArgumentParser:
    parser = JsonAwareParser(prog="trustdial", description=__doc__.split("\n\n")[0] if __doc__ else None)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_or_refuse(build_parser(), argv, {"ok": False})
    if args is None:
        return 2  # usage
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
