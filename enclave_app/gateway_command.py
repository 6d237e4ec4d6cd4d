"""``trustdial gateway``: the HTTP JSON API on the parent instance (see enclave_app.gateway)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from enclave_app.addresses import parse_address, tcp_listener
from enclave_app.enclave_link import EnclaveLink
from enclave_app.gateway import Gateway, GatewayLimits, render_error
from enclave_app.http_server import serve_http


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("gateway", help="HTTP API in front of the enclave server (parent instance)")
    parser.add_argument("--enclave", required=True, help="vsock:CID:PORT or tcp:HOST:PORT")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT (port 0 = any)")
    parser.add_argument("--max-body", type=int, default=4 * 1024 * 1024, help="request body limit in bytes")
    parser.add_argument("--body-timeout", type=float, default=10.0, help="seconds without body bytes before 408")
    parser.add_argument("--keep-alive", type=float, default=30.0, help="seconds an idle connection is kept open")
    parser.add_argument("--enclave-timeout", type=float, default=30.0, help="seconds to wait for the enclave")
    parser.set_defaults(run=run)


async def _serve(args: argparse.Namespace) -> int:
    host, _, port = args.listen.rpartition(":")
    sock = tcp_listener(host or "127.0.0.1", int(port))
    sock.setblocking(False)
    link = EnclaveLink(parse_address(args.enclave), timeout=args.enclave_timeout)
    limits = GatewayLimits(max_body=args.max_body, body_timeout=args.body_timeout, keep_alive=args.keep_alive)
    gateway = Gateway(link, limits)
    server = await serve_http(gateway.handle, sock, limits.http(), render_error)
    bound_host, bound_port = sock.getsockname()[:2]
    print(json.dumps({"event": "listening", "url": f"http://{bound_host}:{bound_port}"}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        server.close()
        await link.close()
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_serve(args))
    except (OSError, ValueError) as err:
        print(f"trustdial gateway: {err}", file=sys.stderr)
        return 2
