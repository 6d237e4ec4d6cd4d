"""``trustdial llm build SRC --output DIR`` and ``trustdial llm digest DIR``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trustdial_verifier.unstable.llm import BundleError, verify_bundle

from infra.image.command_output import refuse
from trustdial.llm.build import BuildError, Precision, build_bundle


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("llm", help="LLM model bundles for the enclave's engine")
    commands = parser.add_subparsers(dest="llm_command", required=True, metavar="COMMAND")
    build = commands.add_parser("build", help="GGUF file or Hugging Face directory -> onnxruntime-genai bundle")
    build.add_argument("source", type=Path, help="a .gguf file or a Hugging Face model directory")
    build.add_argument("--output", type=Path, required=True, help="bundle directory to create (must not exist)")
    build.add_argument("--precision", choices=[p.value for p in Precision], default=Precision.INT4.value)
    build.add_argument("--name", help="the bundle's name in its manifest (default: the source's stem)")
    build.add_argument("--json", action="store_true", help="print one JSON object")
    build.set_defaults(run=run_build)
    digest = commands.add_parser("digest", help="check every file of a bundle against its manifest; print the digest")
    digest.add_argument("bundle", type=Path)
    digest.add_argument("--json", action="store_true", help="print one JSON object")
    digest.set_defaults(run=run_digest)


def run_build(args: argparse.Namespace) -> int:
    try:
        built = build_bundle(args.source, args.output, Precision(args.precision), name=args.name)
    except BuildError as err:
        refuse(err.code, err.message, args.json)
        return 2
    except BundleError as err:
        refuse(err.code, err.reason, args.json)
        return 2
    except ImportError as err:
        refuse("BUILD_DEPENDENCIES", f"{err}; install the build dependencies with `make llm-deps`", args.json)
        return 2
    except OSError as err:
        refuse("IO_ERROR", str(err), args.json)
        return 2
    files = len(built.manifest.files)
    result = {"ok": True, "bundle": str(built.directory), "digest": built.digest.hex(), "files": files}
    print(json.dumps(result) if args.json else f"{built.directory}: bundle digest {built.digest.hex()}")
    return 0


def run_digest(args: argparse.Namespace) -> int:
    try:
        manifest = verify_bundle(args.bundle)
    except BundleError as err:
        refuse(err.code, err.reason, args.json)
        return 1
    result = {"ok": True, "bundle": str(args.bundle), "digest": manifest.digest().hex(), "meta": dict(manifest.meta)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.bundle}: bundle digest {result['digest']}", file=sys.stdout)
    return 0
