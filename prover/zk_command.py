"""``trustdial zk compile|prove``: build pinned ezkl artifacts and prove inputs locally."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trustdial_verifier.errors import InputError, VerificationError
from trustdial_verifier.unstable.proof import load_tensor_file

from prover.circuit_settings import VISIBILITIES, CircuitOptions
from prover.compile import DEFAULT_TOLERANCE, compile_model
from prover.errors import ProverError
from prover.prove import prove


def register(subparsers: Any) -> None:
    zk = subparsers.add_parser("zk", help="ezkl circuits: compile a model segment, prove inputs")
    commands = zk.add_subparsers(dest="zk_command", required=True, metavar="ZK_COMMAND")

    compile_parser = commands.add_parser("compile", help="settings, circuit, keys, SRS and artifacts.json for a model")
    compile_parser.add_argument("model", type=Path, metavar="MODEL.onnx")
    compile_parser.add_argument("--calibration", type=Path, required=True, metavar="DATA.json")
    compile_parser.add_argument("--output", type=Path, required=True, metavar="DIR")
    compile_parser.add_argument(
        "--srs", type=Path, metavar="FILE", help="ceremony kzg{k}.srs (or, with --dev-srs, a dev SRS)"
    )
    compile_parser.add_argument(
        "--dev-srs", action="store_true", help="INSECURE local SRS: whoever generated it could forge proofs"
    )
    compile_parser.add_argument("--input-visibility", choices=VISIBILITIES, default="public")
    compile_parser.add_argument("--output-visibility", choices=VISIBILITIES, default="public")
    compile_parser.add_argument("--decomp-base", type=int, help="ezkl decomposition base (default 16384)")
    compile_parser.add_argument("--decomp-legs", type=int, help="ezkl decomposition legs (default 2)")
    compile_parser.add_argument("--tune", action="store_true", help="search settings for the fastest accurate circuit")
    compile_parser.add_argument(
        "--tolerance", type=float, default=DEFAULT_TOLERANCE, help="max abs error vs onnxruntime"
    )
    compile_parser.add_argument("--json", action="store_true", help="print artifacts.json as one JSON object on stdout")
    compile_parser.set_defaults(run=run_compile)

    prove_parser = commands.add_parser("prove", help="prove one input with compiled artifacts")
    prove_parser.add_argument("artifacts", type=Path, metavar="DIR")
    prove_parser.add_argument("--input", type=Path, required=True, metavar="INPUT.json")
    prove_parser.add_argument("--output", type=Path, required=True, metavar="PROOF.json")
    prove_parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    prove_parser.set_defaults(run=run_prove)


def run_compile(args: argparse.Namespace) -> int:
    def action() -> dict[str, Any]:
        options = CircuitOptions(
            input_visibility=args.input_visibility,
            output_visibility=args.output_visibility,
            decomp_base=args.decomp_base,
            decomp_legs=args.decomp_legs,
        )
        artifacts = compile_model(
            args.model,
            args.calibration,
            args.output,
            srs=args.srs,
            dev_srs=args.dev_srs,
            options=options,
            tune_settings=args.tune,
            tolerance=args.tolerance,
        )
        return artifacts.to_json()

    return _run(action, as_json=args.json)


def run_prove(args: argparse.Namespace) -> int:
    def action() -> dict[str, Any]:
        tensor = load_tensor_file(args.input, side="input")
        path = prove(args.artifacts, tensor, args.output)
        return {"proof": str(path)}

    return _run(action, as_json=args.json)


def _run(action: Any, *, as_json: bool) -> int:
    """0 done, 1 the work failed (typed error), 2 bad input or I/O."""
    try:
        result = action()
    except ProverError as err:
        _fail(err.code, err.reason, as_json, status_text="FAILED")
        return 1
    except (InputError, VerificationError) as err:
        _fail(err.code, err.reason, as_json, status_text="ERROR")
        return 2
    except OSError as err:
        _fail("IO_ERROR", str(err), as_json, status_text="ERROR")
        return 2
    if as_json:
        sys.stdout.write(json.dumps({"ok": True, **result}) + "\n")
    else:
        sys.stdout.write("OK\n")
    return 0


def _fail(code: str, reason: str, as_json: bool, *, status_text: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"ok": False, "code": code, "reason": reason}) + "\n")
    else:
        sys.stderr.write(f"{status_text} [{code}] {reason}\n")
