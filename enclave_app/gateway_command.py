"""``trustdial gateway``: the HTTP JSON API on the parent instance (see enclave_app.gateway)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import uvicorn

from enclave_app.addresses import parse_address, tcp_listener
from enclave_app.enclave_link import EnclaveLink
from enclave_app.gateway import GatewayLimits, create_app


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("gateway", help="HTTP API in front of the enclave server (parent instance)")
    parser.add_argument("--enclave", required=True, help="vsock:CID:PORT or tcp:HOST:PORT")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT (port 0 = any)")
    parser.add_argument("--max-body", type=int, default=4 * 1024 * 1024, help="request body limit in bytes")
    parser.add_argument("--body-timeout", type=float, default=10.0, help="seconds without body bytes before 408")
    parser.add_argument("--enclave-timeout", type=float, default=30.0, help="seconds to wait for the enclave")
    parser.set_defaults(run=run)


async def _serve(args: argparse.Namespace) -> int:
    host, _, port = args.listen.rpartition(":")
    sock = tcp_listener(host or "127.0.0.1", int(port))
    link = EnclaveLink(parse_address(args.enclave), timeout=args.enclave_timeout)
    app = create_app(link, GatewayLimits(max_body=args.max_body, body_timeout=args.body_timeout))
    config = uvicorn.Config(app, log_level="warning", timeout_keep_alive=30, access_log=False)
    server = uvicorn.Server(config)
    bound_host, bound_port = sock.getsockname()[:2]
    print(json.dumps({"event": "listening", "url": f"http://{bound_host}:{bound_port}"}), flush=True)
    await server.serve(sockets=[sock])
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_serve(args))
    except (OSError, ValueError) as err:
        print(f"trustdial gateway: {err}", file=sys.stderr)
        return 2
