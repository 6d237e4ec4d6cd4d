"""``trustdial pipeline``: write the reference pipeline, split a pipeline into segments."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from trustdial_verifier.errors import InputError, VerificationError

from prover.compile import DEFAULT_TOLERANCE
from prover.errors import ProverError
from trustdial.pipeline.composite_writer import dump_composite
from trustdial.pipeline.publish_dev import publish_dev
from trustdial.pipeline.queue_prover import DEFAULT_TIMEOUT_S, QueueConfig, QueueProver
from trustdial.pipeline.reference_pipeline import write_reference_pipeline
from trustdial.pipeline.run import (
    GatewayEnclave,
    LocalEnclave,
    enclave_for,
    load_split,
    read_input,
    run_pipeline,
)
from trustdial.pipeline.spec import load_spec
from trustdial.pipeline.split import DEFAULT_ATOL, DEFAULT_RTOL, DEFAULT_SAMPLES, ZkOptions, split_pipeline


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("pipeline", help="hybrid pipelines: per-segment trust modes in one inference")
    commands = parser.add_subparsers(dest="pipeline_command", required=True, metavar="COMMAND")

    reference = commands.add_parser("reference", help="write the ~1M-parameter reference model and its pipeline.toml")
    reference.add_argument("--output", type=Path, required=True, help="directory to write into")
    reference.add_argument("--boundary", choices=("private", "public"), default="private")
    reference.set_defaults(run=_run_reference)

    split = commands.add_parser("split", help="extract each segment and check that they compose to the full model")
    split.add_argument("pipeline", type=Path, help="pipeline.toml")
    split.add_argument("--output", type=Path, required=True, help="directory for segments/ and split.json")
    split.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="random sample inputs to compare")
    split.add_argument("--atol", type=float, default=DEFAULT_ATOL)
    split.add_argument("--rtol", type=float, default=DEFAULT_RTOL)
    split.add_argument("--compile-zk", action="store_true", help="also compile the zk segments (prover)")
    split.add_argument("--srs", type=Path, help="ceremony SRS file for the zk segments")
    split.add_argument("--dev-srs", action="store_true", help="INSECURE: generate a development SRS")
    split.add_argument(
        "--decomp", help="fixed ezkl decomposition BASE,LEGS for the zk segments (e.g. 1024,3); skips tuning"
    )
    split.add_argument(
        "--no-tune", action="store_true", help="compile zk segments with ezkl's default settings (no tuning)"
    )
    split.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"max abs error of a tuned zk segment vs onnxruntime (default {DEFAULT_TOLERANCE:g})",
    )
    split.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    split.set_defaults(run=_run_split)

    publish = commands.add_parser(
        "publish-dev", help="DEVELOPMENT: build a synthetic dev EIF with the tee models and sign a local manifest"
    )
    publish.add_argument("pipeline", type=Path, help="pipeline.toml")
    publish.add_argument("--split", type=Path, required=True, help="output directory of `pipeline split`")
    publish.add_argument("--output", type=Path, required=True, help="directory for image/, manifest.cose and keys")
    publish.set_defaults(run=_run_publish)

    run = commands.add_parser("run", help="run one inference through the pipeline and write its composite receipt")
    run.add_argument("pipeline", type=Path, help="pipeline.toml")
    run.add_argument("--split", type=Path, required=True, help="output directory of `pipeline split --compile-zk`")
    run.add_argument("--input", type=Path, required=True, help="JSON {name: {dtype, shape, data: base64}}")
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", action="store_true", help="run tee segments in the local simulated enclave")
    where.add_argument("--gateway", metavar="URL", help="run tee segments through this enclave gateway")
    run.add_argument("--measurements", type=Path, required=True, help="signed measurement manifest (.cose)")
    run.add_argument("--output", type=Path, required=True, help="composite receipt JSON to write")
    run.add_argument("--nonce", help="request nonce, 64 hex digits (default: random)")
    run.add_argument("--root-out", type=Path, help="write the simulated NSM's root certificate (PEM) here")
    queue = run.add_argument_group("zk steps through the prover queue (default: prove inline)")
    queue.add_argument("--prover-queue", metavar="URL", help="SQS queue URL of `trustdial prover worker`s")
    queue.add_argument("--prover-bucket", metavar="BUCKET", help="S3 bucket the workers read jobs and write proofs")
    queue.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint override (e.g. a local moto server)")
    queue.add_argument("--region", help="AWS region of the queue and bucket")
    queue.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S", help="seconds to wait for each proof"
    )
    run.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    run.set_defaults(run=_run_run)


def _run_reference(args: argparse.Namespace) -> int:
    try:
        path = write_reference_pipeline(args.output, args.boundary)
    except OSError as err:
        _fail("IO_ERROR", str(err), False)
        return 2
    print(path)
    return 0


def _run_split(args: argparse.Namespace) -> int:
    def progress(line: str) -> None:
        print(f"[pipeline split] {line}", file=sys.stderr, flush=True)

    try:
        spec = load_spec(args.pipeline)
        zk = None
        if args.compile_zk:
            zk = ZkOptions(
                srs=args.srs,
                dev_srs=args.dev_srs,
                decomposition=_decomposition(args.decomp),
                tune=not args.no_tune,
                tolerance=args.tolerance,
            )
        result = split_pipeline(
            spec, args.output, samples=args.samples, atol=args.atol, rtol=args.rtol, zk=zk, progress=progress
        )
    except (InputError, ProverError) as err:
        _fail(err.code, err.reason, args.json)
        return 2
    except OSError as err:
        _fail("IO_ERROR", str(err), args.json)
        return 2
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        for segment in result.segments:
            print(f"{segment.name:12} {segment.mode:7} {segment.file}  sha256 {segment.sha256}")
        print(
            f"composition: {result.composition.samples} samples, max abs error "
            f"{result.composition.max_abs_error:.3g} (atol {result.composition.atol})"
        )
        print(f"policy sha256 {result.policy_sha256}")
    return 0


def _progress(prefix: str) -> Callable[[str], None]:
    def report(line: str) -> None:
        print(f"[pipeline {prefix}] {line}", file=sys.stderr, flush=True)

    return report


def _run_publish(args: argparse.Namespace) -> int:
    try:
        spec = load_spec(args.pipeline)
        published = publish_dev(spec.policy, load_split(args.split), args.output)
    except InputError as err:
        _fail(err.code, err.reason, False)
        return 2
    except OSError as err:
        _fail("IO_ERROR", str(err), False)
        return 2
    print(f"SYNTHETIC development image {published.image.eif}")
    for name, value in published.image.pcrs.items():
        print(f"  {name} {value}")
    print(f"signed manifest {published.manifest.signed} (key {published.manifest.public_key})")
    return 0


def _run_run(args: argparse.Namespace) -> int:
    if args.nonce is not None and (len(args.nonce) != 64 or not all(c in "0123456789abcdef" for c in args.nonce)):
        _fail("BAD_NONCE", "expected --nonce as 64 lowercase hex digits", args.json)
        return 2
    if (args.prover_queue is None) != (args.prover_bucket is None):
        _fail("MISSING_ARGUMENT", "--prover-queue and --prover-bucket go together", args.json)
        return 2
    if args.timeout <= 0:
        _fail("BAD_TIMEOUT", f"expected --timeout > 0, found {args.timeout}", args.json)
        return 2
    try:
        spec = load_spec(args.pipeline)
        split = load_split(args.split)
        signed = args.measurements.read_bytes()
        prover = None
        if args.prover_queue is not None:
            config = QueueConfig(
                queue_url=args.prover_queue,
                bucket=args.prover_bucket,
                endpoint_url=args.endpoint_url,
                region=args.region,
                timeout_s=args.timeout,
            )
            prover = QueueProver(config, progress=_progress("run"))
        enclave: LocalEnclave | GatewayEnclave = (
            GatewayEnclave(args.gateway) if args.gateway else enclave_for(split, spec.policy, signed)
        )
        try:
            result = run_pipeline(
                spec,
                split,
                read_input(args.input),
                manifest_signed=signed,
                enclave=enclave,
                request_nonce=args.nonce,
                prover=prover,
                progress=_progress("run"),
            )
        finally:
            enclave.close()
        if args.root_out is not None and isinstance(enclave, LocalEnclave):
            args.root_out.write_bytes(enclave.root_pem)
        args.output.write_bytes(dump_composite(result.receipt))
    except (InputError, ProverError, VerificationError) as err:  # e.g. MANIFEST_*: a --measurements not signed
        _fail(err.code, err.reason, args.json)
        return 2
    except OSError as err:
        _fail("IO_ERROR", str(err), args.json)
        return 2
    summary = {
        "receipt": str(args.output),
        "outputs": {name: value.ravel().tolist() for name, value in result.outputs.items()},
        "steps": {name: round(seconds, 6) for name, seconds in result.step_seconds.items()},
        "total_seconds": round(result.total_seconds, 6),
    }
    print(json.dumps(summary) if args.json else "\n".join(f"{k}: {v}" for k, v in summary.items()))
    return 0


def _decomposition(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    base, _, legs = text.partition(",")
    if not base.isdigit() or not legs.isdigit():
        raise InputError("BAD_DECOMP", f"expected --decomp BASE,LEGS (e.g. 1024,3), found {text!r}")
    return int(base), int(legs)


def _fail(code: str, reason: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"ok": False, "code": code, "reason": reason}))
    else:
        print(f"error [{code}] {reason}", file=sys.stderr)
