"""``trustdial-verify proxy --upstream URL --pcrs FILE --model NAME=DIGEST``: the verifying OpenAI proxy.

Prints one JSON line ``{"event": "listening", "url": ...}`` once it accepts connections, then serves until
interrupted. See :mod:`trustdial_verifier._internal.llm.proxy`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trustdial_verifier._internal.cli.receipt_command import _hex, _manifest, _pcrs, _root
from trustdial_verifier.errors import InputError, VerificationError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("proxy", help="OpenAI-compatible endpoint on 127.0.0.1 that verifies every token")
    parser.add_argument("--upstream", required=True, help="the trustdial gateway's URL")
    parser.add_argument("--pcr", action="append", default=[], metavar="INDEX=HEX", help="expected PCR (repeatable)")
    parser.add_argument("--pcrs", type=Path, help='JSON {"0": "hex", ...} of expected PCRs')
    parser.add_argument("--model", action="append", default=[], metavar="NAME=DIGEST", help="expected bundle digest")
    parser.add_argument(
        "--measurements", "--manifest", dest="measurements", type=Path,
        help="signed measurement manifest (.cose): expected PCRs and, per model name, the bundle digest",
    )  # fmt: skip
    parser.add_argument("--manifest-key", type=Path, help="PEM or DER P-384 public key of the manifest signer")
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT on loopback (port 0 = any)")
    parser.add_argument("--attestation-ttl", type=float, default=300.0, help="seconds before attesting again")
    parser.add_argument("--root", type=Path, help="PEM root certificate instead of the pinned AWS Nitro root")
    parser.add_argument("--allow-debug", action="store_true", help="DANGER: accept debug-mode enclaves")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from trustdial_verifier._internal.llm.proxy import ProxySettings, serve

    try:
        manifest = _manifest(args)
        bundles = {}
        if manifest is not None:
            for name, entry in manifest.models.items():
                bundles[name] = _hex(entry["sha256"], f"manifest model {name}")
        for spec in args.model:
            name, sep, digest = spec.partition("=")
            if not sep or not name:
                raise InputError("BAD_MODEL", f"expected --model NAME=DIGEST, found {spec!r}")
            bundles[name] = _hex(digest, f"--model {name}")
        if not bundles:
            raise InputError("NO_EXPECTED_MODEL", "refusing to proxy without --model NAME=DIGEST or --manifest models")
        host, _, port = args.listen.rpartition(":")
        settings = ProxySettings(
            upstream=args.upstream, pcrs=_pcrs(args, manifest), bundles=bundles,
            root=_root(args.root) if args.root else None, allow_debug=args.allow_debug,
            attestation_ttl=args.attestation_ttl,
        )  # fmt: skip
        server = serve(settings, host or "127.0.0.1", int(port))
    except (InputError, VerificationError, ValueError, OSError) as err:
        code = getattr(err, "code", "BAD_ARGUMENTS")
        print(f"trustdial-verify proxy: [{code}] {err}", file=sys.stderr)
        return 2
    bound_host, bound_port = server.server_address[:2]
    host_text = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
    print(json.dumps({"event": "listening", "url": f"http://{host_text}:{bound_port}"}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.proxy.close()
    return 0
