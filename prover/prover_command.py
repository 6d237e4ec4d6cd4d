"""``trustdial prover worker|submit``: the proof-job fleet (SQS + S3)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from trustdial_verifier.errors import InputError, VerificationError

from prover.aws_clients import make_clients
from prover.errors import ProverError
from prover.submit import submit_job, upload_artifacts
from prover.worker import Worker, WorkerConfig


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("prover", help="proof-job fleet: run a worker, submit jobs")
    commands = parser.add_subparsers(dest="prover_command", required=True, metavar="PROVER_COMMAND")

    worker = commands.add_parser(
        "worker", help="take proof jobs from SQS, store proofs in S3 (JSON event lines on stdout)"
    )
    _common(worker)
    worker.add_argument("--concurrency", type=int, default=1, help="jobs proved at once (each in its own process)")
    worker.add_argument("--visibility-timeout", type=int, default=60, help="seconds each heartbeat keeps a job hidden")
    worker.add_argument("--wait-time", type=int, default=10, help="SQS long-poll seconds")
    worker.add_argument(
        "--shutdown-grace", type=float, default=30.0, help="seconds a running proof may finish after SIGTERM"
    )
    worker.add_argument("--cache-dir", type=Path, help="where downloaded artifacts are kept")
    worker.set_defaults(run=run_worker)

    submit = commands.add_parser("submit", help="upload an input (and optionally artifacts) and enqueue a proof job")
    _common(submit)
    submit.add_argument("--artifacts-prefix", required=True, help="S3 prefix holding artifacts.json and its files")
    submit.add_argument("--upload-artifacts", type=Path, metavar="DIR", help="upload this artifacts directory first")
    submit.add_argument("--input", type=Path, required=True, metavar="INPUT.json")
    submit.add_argument("--proof-key", help="S3 key for the proof (default proofs/<job-id>.json)")
    submit.add_argument("--job-id")
    submit.set_defaults(run=run_submit)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--endpoint-url", help="AWS endpoint override (e.g. a local moto server)")
    parser.add_argument("--region")


def run_worker(args: argparse.Namespace) -> int:
    try:
        config = WorkerConfig(
            queue_url=args.queue_url,
            bucket=args.bucket,
            endpoint_url=args.endpoint_url,
            region=args.region,
            concurrency=args.concurrency,
            visibility_timeout_s=args.visibility_timeout,
            wait_time_s=args.wait_time,
            shutdown_grace_s=args.shutdown_grace,
            cache_dir=args.cache_dir,
        )
        return Worker(config).run()
    except ProverError as err:
        sys.stderr.write(f"ERROR [{err.code}] {err.reason}\n")
        return 2


def run_submit(args: argparse.Namespace) -> int:
    sqs, s3 = make_clients(args.endpoint_url, args.region)
    try:
        if args.upload_artifacts is not None:
            upload_artifacts(s3, args.bucket, args.upload_artifacts, args.artifacts_prefix)
        job = submit_job(
            sqs,
            s3,
            queue_url=args.queue_url,
            bucket=args.bucket,
            artifacts_prefix=args.artifacts_prefix,
            input_file=args.input,
            proof_key=args.proof_key,
            job_id=args.job_id,
        )
    except (ProverError, InputError, VerificationError) as err:
        sys.stderr.write(f"ERROR [{err.code}] {err.reason}\n")
        return 2
    except (ClientError, BotoCoreError, OSError) as err:
        sys.stderr.write(f"ERROR [AWS_OR_IO] {err}\n")
        return 2
    sys.stdout.write(json.dumps({"ok": True, **asdict(job)}) + "\n")
    return 0
