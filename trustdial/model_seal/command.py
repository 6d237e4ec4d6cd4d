"""``trustdial model seal MODEL_OR_DIR --key kms:ALIAS_OR_ARN|file:PEM --output DIR [--json]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from infra.image.command_output import guarded
from trustdial.model_seal.data_keys import data_keys_from_spec
from trustdial.model_seal.seal import seal_model


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("model", help="prepare models for the enclave (seal)")
    commands = parser.add_subparsers(dest="model_command", required=True, metavar="SUBCOMMAND")
    seal = commands.add_parser("seal", help="envelope-encrypt a model file or bundle directory for an attested enclave")
    seal.add_argument("source", type=Path, metavar="MODEL_OR_DIR")
    seal.add_argument(
        "--key", required=True, help="kms:ALIAS_OR_ARN (GenerateDataKey) or file:PUBLIC.pem (RSA-OAEP, development)"
    )
    seal.add_argument("--output", required=True, type=Path, help="a new (or empty) directory")
    seal.add_argument("--model-file", help="the file of a bundle that onnxruntime loads (default: the one .onnx)")
    seal.add_argument("--region", help="AWS region for kms: (default: the AWS configuration)")
    seal.add_argument("--endpoint-url", help="KMS endpoint (default: AWS_ENDPOINT_URL_KMS or the regional one)")
    seal.add_argument("--json", action="store_true")
    seal.set_defaults(run=run_seal)


def run_seal(args: argparse.Namespace) -> int:
    def kms_client() -> Any:
        import boto3

        return boto3.client("kms", region_name=args.region, endpoint_url=args.endpoint_url)

    def action() -> dict[str, Any]:
        report = seal_model(
            args.source,
            args.output,
            data_keys_from_spec(args.key, kms_client=kms_client),
            model_file=args.model_file,
            progress=lambda line: print(f"trustdial model seal: {line}", file=sys.stderr, flush=True),
        )
        return report.to_json()

    return guarded(action, args.json)
