"""The enclave image's command: ``python -m enclave_app serve ...``.

It imports only what runs inside the enclave (``enclave_app`` and the verifier) so that the image,
which holds just those two packages and the runtime lock (``infra/image/enclave/requirements.lock``),
can start it. The production image runs ``serve --listen vsock:5000 --nsm device``; tests and the
qemu boot test run the same module with other flags only. The operator's ``trustdial serve`` is the
same command reached through the full CLI."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from trustdial_verifier.unstable.cli import JsonAwareParser, parse_or_refuse

from enclave_app import serve_command

PROG = "python -m enclave_app"


def main(argv: Sequence[str] | None = None) -> int:
    parser = JsonAwareParser(prog=PROG, description="the attested inference server, as the enclave image runs it")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_command.register(subparsers)
    args = parse_or_refuse(parser, argv, {"ok": False})
    if args is None:
        return 2  # usage
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
