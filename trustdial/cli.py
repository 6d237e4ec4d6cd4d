"""``trustdial``: the operator's command line (serve, gateway, zk, prover, eif, measurements,
pipeline, demo, llm). Each command group lives next to the code it drives and exposes
``register(subparsers)``.

The registry below names each command's module and one-line help, and only the module of the
command being run is imported: a host that installed only its role's extra (``trustdial[host]``)
can run ``trustdial gateway`` without the CDK, ezkl or onnx, and ``trustdial --help`` imports
nothing at all. The enclave image does not use this CLI: its command is ``python -m enclave_app``
(see ``enclave_app/__main__.py``)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from trustdial_verifier.unstable.cli import JsonAwareParser, parse_or_refuse


@dataclass(frozen=True)
class Command:
    """One top-level command: its name, the module whose ``register`` adds it, and its help line
    (the same text the module passes to ``add_parser``; a test keeps the two equal)."""

    name: str
    module: str
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("demo", "trustdial.demo_command", "run the hybrid pipeline demo end to end (local, no AWS)"),
    Command("eif", "infra.image.eif_command", "build enclave image files and ramdisks reproducibly"),
    Command(
        "image",
        "infra.image.image_build_command",
        "Docker-free enclave image build: Debian package locks, rootfs + wheels + app as an OCI archive",
    ),
    Command(
        "measurements", "infra.measurements.measurements_command", "create, sign and publish measurement manifests"
    ),
    Command("zk", "prover.zk_command", "ezkl circuits: compile a model segment, prove inputs"),
    Command("prover", "prover.prover_command", "proof-job fleet: run a worker, submit jobs"),
    Command("serve", "enclave_app.serve_command", "run the attested inference server (inside the enclave)"),
    Command("gateway", "enclave_app.gateway_command", "HTTP API in front of the enclave server (parent instance)"),
    Command(
        "host-credentials",
        "enclave_app.host_credentials_command",
        "serve the instance role's credentials to the enclave over vsock (parent side)",
    ),
    Command("pipeline", "trustdial.pipeline.command", "hybrid pipelines: per-segment trust modes in one inference"),
    Command("model", "trustdial.model_seal.command", "prepare models for the enclave (seal)"),
    Command("llm", "trustdial.llm.command", "LLM model bundles for the enclave's engine"),
)


def _chosen(words: Sequence[str]) -> Command | None:
    """The command the words name: the first word that is not an option (the top level takes no option with a
    value), or None (no command, or an unknown one: argparse then refuses it with the full list)."""
    for word in words:
        if not word.startswith("-"):
            return next((command for command in COMMANDS if command.name == word), None)
    return None


def build_parser(words: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser for ``words``: the chosen command's module registers its full parser, every other command is
    listed by name and help only (nothing of it is imported)."""
    parser = JsonAwareParser(prog="trustdial", description=__doc__.split("\n\n")[0] if __doc__ else None)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _chosen(words)
    for command in COMMANDS:
        if command is chosen:
            importlib.import_module(command.module).register(subparsers)
        else:
            subparsers.add_parser(command.name, help=command.help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    args = parse_or_refuse(build_parser(words), words, {"ok": False})
    if args is None:
        return 2  # usage
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
