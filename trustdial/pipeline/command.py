"""``trustdial pipeline``: write the reference pipeline, split a pipeline into segments."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from verifier.errors import InputError

from trustdial.pipeline.reference_pipeline import write_reference_pipeline
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
    split.add_argument("--decomp", help="ezkl decomposition BASE,LEGS for the zk segments (e.g. 1024,3)")
    split.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    split.set_defaults(run=_run_split)


def _run_reference(args: argparse.Namespace) -> int:
    path = write_reference_pipeline(args.output, args.boundary)
    print(path)
    return 0


def _run_split(args: argparse.Namespace) -> int:
    def progress(line: str) -> None:
        print(f"[pipeline split] {line}", file=sys.stderr, flush=True)

    try:
        spec = load_spec(args.pipeline)
        zk = None
        if args.compile_zk:
            zk = ZkOptions(srs=args.srs, dev_srs=args.dev_srs, decomposition=_decomposition(args.decomp))
        result = split_pipeline(
            spec, args.output, samples=args.samples, atol=args.atol, rtol=args.rtol, zk=zk, progress=progress
        )
    except InputError as err:
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
