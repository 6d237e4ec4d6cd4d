"""``trustdial host-credentials``: on the parent instance, hand the instance role's credentials to the enclave."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from datetime import timedelta
from typing import Any

from enclave_app.addresses import parse_address
from enclave_app.host_credentials import IMDS, CredentialCache, CredentialServer, ImdsCredentialSource


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "host-credentials", help="serve the instance role's credentials to the enclave over vsock (parent side)"
    )
    parser.add_argument("--listen", default="vsock:8001", help="vsock:PORT (default) or tcp:HOST:PORT")
    parser.add_argument("--imds", default=IMDS, help="IMDS base URL")
    parser.add_argument(
        "--allow-cid", type=int, action="append", default=[], help="enclave CID allowed to connect (repeatable)"
    )
    parser.add_argument("--refresh-margin", type=float, default=900.0, help="seconds before expiry to refresh")
    parser.set_defaults(run=run)


async def _serve(args: argparse.Namespace) -> int:
    cache = CredentialCache(ImdsCredentialSource(args.imds).fetch, timedelta(seconds=args.refresh_margin))
    server = CredentialServer(cache, allowed_cids=args.allow_cid)
    bound = await server.start(parse_address(args.listen))
    print(json.dumps({"event": "listening", "address": str(bound)}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()
    return 0


def run(args: argparse.Namespace) -> int:
    if args.refresh_margin < 0:
        print("trustdial host-credentials: --refresh-margin must not be negative", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args))
    except (OSError, ValueError) as err:
        print(f"trustdial host-credentials: {err}", file=sys.stderr)
        return 2
