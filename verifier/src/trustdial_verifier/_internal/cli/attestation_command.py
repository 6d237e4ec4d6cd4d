"""``trustdial-verify attestation``: check a Nitro attestation document against expectations.

With no --pcr, --nonce, --user-data or --public-key there is nothing to compare the enclave against,
so the command refuses to run (exit 2) rather than accept any authentic document.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from trustdial_verifier._internal.attestation.verify import (
    AllOf,
    AttestationDocument,
    AttestationPolicy,
    MaxAge,
    NonceEquals,
    PcrsEqual,
    PublicKeyEquals,
    UserDataEquals,
    read_unverified_timestamp,
)
from trustdial_verifier._internal.cli.evidence_input import parse_hex, parse_pcr_index, read_evidence
from trustdial_verifier._internal.cli.report import run_check
from trustdial_verifier.errors import InputError, describe_value
from trustdial_verifier.verify import verify_attestation

DESCRIPTION = """Verify an AWS Nitro Enclaves attestation document (raw COSE_Sign1 bytes, hex or base64 text;
"-" reads stdin) against the pinned AWS Nitro Root-G1 (or --root), and compare it with your expectations.
At least one of --pcr, --nonce, --user-data, --public-key is required: without an expectation any
authentic enclave would pass, so the command refuses (exit 2). Exit 0 valid, 1 rejected, 2 usage or I/O."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "attestation",
        help="verify a Nitro attestation document",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("document", metavar="DOC", help="file with the document (raw, hex or base64), or - for stdin")
    parser.add_argument("--root", metavar="PEM", help="trust this root certificate instead of AWS Nitro Root-G1")
    parser.add_argument(
        "--at",
        default="now",
        metavar="WHEN",
        help="verification time: now (default), doc (the document's own timestamp, for auditing old evidence), "
        "ISO 8601 (UTC if no offset) or UNIX seconds",
    )
    parser.add_argument(
        "--pcr", action="append", default=[], metavar="INDEX=HEX", help="expected PCR value (repeatable)"
    )
    parser.add_argument("--nonce", metavar="HEX", help="expected nonce")
    parser.add_argument("--user-data", metavar="HEX", help="expected user_data")
    parser.add_argument("--public-key", metavar="HEX", help="expected public_key")
    parser.add_argument(
        "--max-age",
        type=float,
        metavar="SECONDS",
        help="reject documents older than this at the verification time (not with --at doc)",
    )
    parser.add_argument(
        "--allow-debug", action="store_true", help="accept debug-mode enclaves (PCR0 all zero): NOT for production"
    )
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_check(lambda: check(args), as_json=args.json)


def check(args: argparse.Namespace) -> Mapping[str, Any]:
    policy = build_policy(args)
    root = load_root(args.root) if args.root else None
    raw = read_evidence(args.document)
    at = resolve_time(args.at, raw)
    return describe(verify_attestation(raw, policy, root=root, at=at, allow_debug=args.allow_debug))


def build_policy(args: argparse.Namespace) -> AttestationPolicy:
    policies: list[AttestationPolicy] = []
    if args.pcr:
        policies.append(PcrsEqual(parse_pcrs(args.pcr)))
    if args.nonce is not None:
        policies.append(NonceEquals(_expected_bytes("--nonce", args.nonce)))
    if args.user_data is not None:
        policies.append(UserDataEquals(_expected_bytes("--user-data", args.user_data)))
    if args.public_key is not None:
        policies.append(PublicKeyEquals(_expected_bytes("--public-key", args.public_key)))
    if not policies:
        raise InputError(
            "NO_EXPECTATIONS",
            "expected at least one of --pcr, --nonce, --user-data, --public-key; without one any authentic "
            "enclave would be accepted, so nothing was verified",
        )
    if args.max_age is not None:
        if args.at == "doc":
            raise InputError(
                "MAX_AGE_WITH_DOC_TIME",
                "--max-age measures age at the verification time, which --at doc sets to the document's own "
                "timestamp (age 0): give --at now or an explicit time to judge freshness",
            )
        policies.append(MaxAge(args.max_age))
    return AllOf(policies)


def _expected_bytes(flag: str, value: str) -> bytes:
    """An expected value from the command line; empty bytes are refused: any enclave can have its NSM
    sign an empty nonce or user_data, so "expecting" them would accept it whatever its PCRs."""
    parsed = parse_hex(flag, value)
    if not parsed:
        raise InputError("EMPTY_EXPECTATION", f"expected a non-empty {flag} value, found {value!r}")
    return parsed


def parse_pcrs(values: list[str]) -> dict[int, bytes]:
    pcrs: dict[int, bytes] = {}
    for value in values:
        index_text, separator, digest_hex = value.partition("=")
        if not separator:
            raise InputError("BAD_PCR", f"expected --pcr INDEX=HEX, found {describe_value(value, 40)}")
        index = parse_pcr_index(index_text, "--pcr")
        if index in pcrs:
            raise InputError("BAD_PCR", f"expected each PCR index once, found PCR{index} twice")
        pcrs[index] = parse_hex(f"PCR{index}", digest_hex)
    return pcrs


def load_root(location: str) -> x509.Certificate:
    path = Path(location)
    if not path.is_file():
        raise InputError("FILE_NOT_FOUND", f"expected a PEM root certificate at {location!r}, found none")
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as err:
        raise InputError("BAD_ROOT", f"expected a PEM certificate in {location!r}: {err}") from None


def resolve_time(value: str, raw: bytes) -> datetime:
    if value == "now":
        return datetime.now(UTC)
    if value == "doc":
        return read_unverified_timestamp(raw)
    try:
        if value.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(value), tz=UTC)
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        raise InputError("BAD_TIME", f"expected --at now, doc, ISO 8601 or UNIX seconds, found {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def describe(document: AttestationDocument) -> dict[str, Any]:
    return {
        "module_id": document.module_id,
        "timestamp": document.timestamp_ms,
        "digest": document.digest,
        "pcrs": {str(index): value.hex() for index, value in sorted(document.pcrs.items())},
        "debug_mode": document.debug_mode,
        "public_key": _hex(document.public_key),
        "user_data": _hex(document.user_data),
        "nonce": _hex(document.nonce),
    }


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()
