"""``trustdial-verify proof PROOF.json --artifacts DIR (--expect … | --measurements …)``: check an
ezkl proof offline against vk/settings digests pinned from outside the artifacts directory."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trustdial_verifier._internal.cli.report import run_check
from trustdial_verifier._internal.measurements import load_public_key, load_signed_manifest
from trustdial_verifier._internal.proof.pins import pins_from_manifest
from trustdial_verifier._internal.proof.tensors import load_tensor_file
from trustdial_verifier._internal.proof.verify import verify_proof
from trustdial_verifier.errors import InputError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "proof",
        help="verify an ezkl proof against pinned artifacts (needs the 'zk' extra)",
        description="Verify an ezkl proof with the vk, settings and SRS whose SHA-256 match DIR/artifacts.json, "
        "and whose vk and settings SHA-256 equal the pins given with --expect or read from a signed measurement "
        "manifest (--measurements/--manifest-key/--segment); without pins it refuses (NO_PINS). Binds the public "
        "instances to the given tensors. Exit 0 valid, 1 rejected, 2 usage or I/O error.",
    )
    parser.add_argument("proof", type=Path, metavar="PROOF.json")
    parser.add_argument("--artifacts", type=Path, required=True, metavar="DIR", help="directory with artifacts.json")
    parser.add_argument("--input", type=Path, metavar="TENSORS.json", help="the input tensor the proof must be about")
    parser.add_argument("--output", type=Path, metavar="TENSORS.json", help="the output tensor the proof must be about")
    parser.add_argument("--input-poseidon", metavar="FELT", help="expected Poseidon hash of the (hashed) input")
    parser.add_argument("--output-poseidon", metavar="FELT", help="expected Poseidon hash of the (hashed) output")
    parser.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="ROLE=SHA256",
        help="pin a file digest from a trusted source (roles: vk, settings, srs, model, compiled_circuit); "
        "pins must include both vk and settings",
    )
    parser.add_argument(
        "--measurements", type=Path, metavar="MANIFEST.cose", help="signed measurement manifest holding the pins"
    )
    parser.add_argument("--manifest-key", type=Path, metavar="PEM", help="public key the manifest must be signed by")
    parser.add_argument("--segment", metavar="NAME", help="the manifest's zk entry to pin against")
    parser.add_argument(
        "--allow-dev-srs",
        action="store_true",
        help="INSECURE: accept an SRS that is not a ceremony file (whoever generated it could forge proofs)",
    )
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    def check() -> Mapping[str, Any]:
        pins = _pins(args)
        inputs = load_tensor_file(args.input, side="input") if args.input is not None else None
        outputs = load_tensor_file(args.output, side="output") if args.output is not None else None
        report = verify_proof(
            args.proof,
            args.artifacts,
            inputs=inputs,
            outputs=outputs,
            input_poseidon=args.input_poseidon,
            output_poseidon=args.output_poseidon,
            allow_dev_srs=args.allow_dev_srs,
            expected_sha256=pins,
        )
        if report.srs_kind != "ceremony":
            sys.stderr.write("WARNING: accepted a dev-insecure SRS (--allow-dev-srs); this proof is not trustworthy\n")
        return report.to_json()

    return run_check(check, as_json=args.json)


def _pins(args: argparse.Namespace) -> dict[str, str]:
    manifest_args = {
        "--measurements": args.measurements,
        "--manifest-key": args.manifest_key,
        "--segment": args.segment,
    }
    given = [name for name, value in manifest_args.items() if value is not None]
    if not given:
        return _parse_pins(args.expect)
    if args.expect:
        raise InputError(
            "CONFLICTING_PINS", "expected pins from --expect OR from a signed manifest, found both (use one source)"
        )
    if len(given) != len(manifest_args):
        missing = ", ".join(name for name in manifest_args if name not in given)
        raise InputError("INCOMPLETE_MANIFEST_ARGS", f"pinning from a manifest also needs {missing}")
    key = load_public_key(_read(args.manifest_key, "--manifest-key"))
    manifest = load_signed_manifest(_read(args.measurements, "--measurements"), key)
    return pins_from_manifest(manifest, args.segment)


def _read(path: Path, flag: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise InputError("FILE_NOT_FOUND", f"{flag}: cannot read {path}: {err}") from err


def _parse_pins(items: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for item in items:
        role, sep, digest = item.partition("=")
        if not sep or not role or len(digest) != 64:
            raise InputError("BAD_PIN", f"expected ROLE=SHA256 (64 hex digits), got {item!r}")
        pins[role] = digest
    return pins
