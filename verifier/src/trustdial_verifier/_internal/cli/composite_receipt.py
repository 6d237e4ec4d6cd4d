"""The composite (multi-step) form of ``trustdial-verify receipt``: RECEIPT.json is a composite
receipt (docs/composite-receipts.md), checked against a signed measurement manifest and,
optionally, the pipeline policy file."""

from __future__ import annotations

import argparse
import base64
import math
import re
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509

from trustdial_verifier._internal.composite.options import ChainOptions
from trustdial_verifier.errors import InputError
from trustdial_verifier.models import CompositeOptions, VerifiedComposite
from trustdial_verifier.policy import load_pipeline_policy
from trustdial_verifier.verify import verify_composite

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TABLE_FIELD = "table"


def _seconds(text: str) -> int:
    """A whole number of seconds, not negative (a negative age would refuse every receipt)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole seconds, found {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, found {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("composite receipts (hybrid pipelines)")
    group.add_argument("--policy", type=Path, help="pipeline.toml the receipt must follow (else: the manifest's pin)")
    group.add_argument("--zk-artifacts", type=Path, help="published zk artifacts, one sub-directory per zk segment")
    group.add_argument("--allow-dev-srs", action="store_true", help="DANGER: accept proofs under a development SRS")
    group.add_argument(
        "--max-attestation-age",
        type=_seconds,
        default=ChainOptions().max_attestation_age_s,
        metavar="SECONDS",
        help="how long after its key's attestation a TEE step may be signed",
    )
    group.add_argument("--at", help="verification time: now (default) or UNIX seconds, for --max-age")
    group.add_argument("--max-age", type=_seconds, metavar="SECONDS", help="reject inferences older than this at --at")
    group.add_argument(
        "--nonce",
        metavar="HEX",
        help="the request nonce you sent (64 hex digits): the receipt must answer it, signed by an enclave step",
    )


def _file(path: Path | None, flag: str) -> Path:
    if path is None:
        raise InputError("MISSING_ARGUMENT", f"a composite receipt needs {flag}")
    if not path.is_file():
        raise InputError("FILE_NOT_FOUND", f"no such file: {path}")
    return path


def _root(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_file(path, "--root").read_bytes())
    except ValueError as err:
        raise InputError("BAD_ROOT", f"expected a PEM certificate in {path}: {err}") from None


#: the composite path's own flags and their defaults: a single TEE receipt checks none of them
COMPOSITE_FLAGS: dict[str, Any] = {
    "policy": None,
    "zk_artifacts": None,
    "allow_dev_srs": False,
    "max_attestation_age": ChainOptions().max_attestation_age_s,
    "at": None,
    "max_age": None,
    "nonce": None,
}


def refuse_flags(args: argparse.Namespace, flags: dict[str, Any], form: str) -> None:
    """A flag given where nothing checks it is a usage error, never silently dropped (e.g. --max-age
    on a single TEE receipt, --pcr on a composite receipt whose PCRs come from the manifest)."""
    given = [f"--{name.replace('_', '-')}" for name, default in flags.items() if getattr(args, name) != default]
    if given:
        raise InputError("FLAG_NOT_APPLICABLE", f"{', '.join(given)}: not checked for {form}; leave it out")


def check_composite(args: argparse.Namespace, data: bytes) -> dict[str, Any]:
    """The CLI's composite path: flags to :class:`CompositeOptions`, then the public :func:`verify_composite`."""
    if args.at is not None and args.max_age is None:
        raise InputError("FLAG_NOT_APPLICABLE", "--at is the verification time of --max-age; alone it checks nothing")
    _request_nonce(args.nonce)  # the flag's own wording for a malformed --nonce
    result = verify_composite(
        data,
        CompositeOptions(
            manifest=_file(args.measurements, "--measurements").read_bytes(),
            manifest_key=_file(args.manifest_key, "--manifest-key").read_bytes(),
            policy=load_pipeline_policy(args.policy) if args.policy is not None else None,
            zk_artifacts=args.zk_artifacts,
            root=_root(args.root) if args.root is not None else None,
            allow_debug=args.allow_debug,
            allow_dev_srs=args.allow_dev_srs,
            max_attestation_age_s=args.max_attestation_age,
            at=_at(args.at),
            max_age_s=args.max_age,
            request_nonce=args.nonce,
        ),
    )
    outputs = {name: _values(tensor.dtype, tensor.data) for name, tensor in result.outputs.items()}
    fields: dict[str, Any] = {
        "kind": "composite",
        "pipeline": result.pipeline,
        "policy_sha256": result.policy_sha256,
        "manifest_sha256": result.manifest_sha256,
        "request_nonce": result.request_nonce,
        "outputs": outputs,
        "steps": [
            {
                "index": s.index,
                "segment": s.segment,
                "mode": s.mode.value,
                "required_mode": s.required_mode.value,
                "reason": s.reason,
                "proven_by": list(s.proven_by),
                "seconds": s.seconds,
                "evidence_bytes": s.evidence_bytes,
            }
            for s in result.steps
        ],
    }
    if not args.json:
        fields[TABLE_FIELD] = render_table(result, outputs)
    return fields


def render_table(result: VerifiedComposite, outputs: dict[str, Any]) -> str:
    """The per-step table and the verdict line (text mode only; --json carries the same facts)."""
    header = ("step", "segment", "mode", "required", "evidence", "what was proven", "by whom", "time", "size")
    rows: list[tuple[str, ...]] = []
    for step in result.steps:
        pieces = step.evidence or ()
        for position, piece in enumerate(pieces):
            first = position == 0
            rows.append(
                (
                    str(step.index) if first else "",
                    step.segment if first else "",
                    step.mode if first else "",
                    step.required_mode if first else "",
                    piece.kind,
                    piece.proven,
                    piece.by,
                    _duration(step.seconds) if first else "",
                    _size(piece.evidence_bytes),
                )
            )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for step in result.steps:
        lines.append(f"  step {step.index} {step.segment}: {step.required_mode} required because: {step.reason}")
    for name, values in outputs.items():
        lines.append(f"  output {name}: {values if isinstance(values, str) else [round(v, 6) for v in values]}")
    total = sum(s.seconds or 0.0 for s in result.steps)
    size = sum(s.evidence_bytes for s in result.steps)
    lines.append(
        f"VALID: composite receipt of pipeline {result.pipeline!r}, {len(result.steps)} steps verified against "
        f"manifest {result.manifest_sha256[:16]}... and policy {result.policy_sha256[:16]}... "
        f"({_duration(total)} stated cost, {_size(size)} evidence)"
    )
    return "\n".join(lines) + "\n"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _size(count: int) -> str:
    return f"{count} B" if count < 1024 else f"{count / 1024:.1f} KiB"


def _request_nonce(text: str | None) -> str | None:
    if text is None:
        return None
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise InputError("BAD_NONCE", f"expected --nonce as 64 hex digits, found {text!r:.80}")
    return text.lower()


def _at(text: str | None) -> datetime | None:
    """--at: now (None) or UNIX seconds, to the millisecond."""
    if text is None or text == "now":
        return None
    try:
        return _EPOCH + timedelta(milliseconds=int(float(text) * 1000))
    except (ValueError, OverflowError) as err:  # nan; inf, 1e400; past year 9999
        raise InputError("BAD_TIME", f"expected --at now or UNIX seconds, found {text!r:.80}") from err


def _values(dtype: str, data: bytes) -> list[float] | str:
    """A public output for the report: its float values, or base64 of its bytes for other dtypes and for
    values JSON cannot carry (NaN, infinities: an enclave step may sign them, --json must stay JSON)."""
    formats = {"float32": "f", "float64": "d"}
    if dtype not in formats:
        return base64.b64encode(data).decode()
    width = struct.calcsize(formats[dtype])
    values = list(struct.unpack(f"<{len(data) // width}{formats[dtype]}", data))
    if not all(math.isfinite(v) for v in values):
        return base64.b64encode(data).decode()
    return values
