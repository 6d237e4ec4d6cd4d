"""``trustdial-verify measurements FILE --public-key PEM [--json]``: verify a signed manifest."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from trustdial_verifier._internal.cli.report import run_check
from trustdial_verifier.errors import InputError
from trustdial_verifier.verify import recompute_pcrs, verify_manifest


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "measurements",
        help="verify a signed measurement manifest",
        description="Check a signed measurement manifest (COSE_Sign1, ES384) against a P-384 public key and "
        "validate its schema; print the manifest.",
    )
    parser.add_argument("file", type=Path, help="signed manifest (.cose)")
    parser.add_argument("--public-key", required=True, type=Path, help="PEM or DER P-384 public key")
    parser.add_argument("--eif", type=Path, help="also require this EIF to match the manifest (digest, PCRs, arch)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    def check() -> dict[str, Any]:
        for path in (args.file, args.public_key, *([args.eif] if args.eif else [])):
            if not path.is_file():
                raise InputError("FILE_NOT_FOUND", f"no such file: {path}")
        signed, key = args.file.read_bytes(), args.public_key.read_bytes()
        manifest = verify_manifest(signed, key)  # the signature first: an EIF is only measured against a valid one
        if args.eif:
            manifest = verify_manifest(signed, key, eif=recompute_pcrs(args.eif))
        return {
            "manifest_sha384": hashlib.sha384(manifest.raw).hexdigest(),
            "eif_checked": bool(args.eif),
            "manifest": manifest.document,
        }

    return run_check(check, as_json=args.json)
