"""The composite (multi-step) form of ``trustdial-verify receipt``: RECEIPT.json is a composite
receipt (docs/composite-receipts.md), checked against a signed measurement manifest and,
optionally, the pipeline policy file."""

from __future__ import annotations

import argparse
import base64
import struct
from pathlib import Path
from typing import Any

from cryptography import x509

from verifier.composite.chain import ChainOptions
from verifier.composite.evidence_tee import check_tee_evidence
from verifier.composite.evidence_zk import check_zk_evidence
from verifier.composite.manifest_facts import facts_from_manifest
from verifier.composite.policy import VISIBILITY_PUBLIC, load_policy
from verifier.composite.receipt import parse_receipt
from verifier.composite.verify import verify_composite
from verifier.errors import InputError
from verifier.measurements import load_public_key, load_signed_manifest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("composite receipts (hybrid pipelines)")
    group.add_argument("--policy", type=Path, help="pipeline.toml the receipt must follow (else: the manifest's pin)")
    group.add_argument("--zk-artifacts", type=Path, help="published zk artifacts, one sub-directory per zk segment")
    group.add_argument("--allow-dev-srs", action="store_true", help="DANGER: accept proofs under a development SRS")
    group.add_argument(
        "--max-attestation-age", type=int, default=ChainOptions().max_attestation_age_s, metavar="SECONDS"
    )


def _file(path: Path | None, flag: str) -> Path:
    if path is None:
        raise InputError("MISSING_ARGUMENT", f"a composite receipt needs {flag}")
    if not path.is_file():
        raise InputError("FILE_NOT_FOUND", f"no such file: {path}")
    return path


def check_composite(args: argparse.Namespace, data: bytes) -> dict[str, Any]:
    key = load_public_key(_file(args.manifest_key, "--manifest-key").read_bytes())
    manifest = load_signed_manifest(_file(args.measurements, "--measurements").read_bytes(), key)
    policy = load_policy(args.policy) if args.policy is not None else None
    root = x509.load_pem_x509_certificate(_file(args.root, "--root").read_bytes()) if args.root is not None else None
    result = verify_composite(
        data,
        manifest=facts_from_manifest(manifest),
        policy=policy,
        checkers={"tee": check_tee_evidence, "zk": check_zk_evidence},
        options=ChainOptions(max_attestation_age_s=args.max_attestation_age),
        checker_options={
            "root": root,
            "allow_debug": args.allow_debug,
            "allow_dev_srs": args.allow_dev_srs,
            "zk_artifacts": args.zk_artifacts,
        },
    )
    receipt = parse_receipt(data)
    outputs = {
        name: _values(record.tensor.dtype, record.tensor.data)
        for name, record in receipt.tensors.items()
        if record.visibility == VISIBILITY_PUBLIC and record.tensor is not None and name in _pipeline_outputs(receipt)
    }
    return {
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
                "mode": s.mode,
                "required_mode": s.required_mode,
                "reason": s.reason,
                "proven_by": list(s.proven_by),
                "seconds": s.seconds,
                "evidence_bytes": s.evidence_bytes,
            }
            for s in result.steps
        ],
    }


def _pipeline_outputs(receipt: Any) -> set[str]:
    segments = receipt.policy["segments"]
    consumed = {t for s in segments for t in s["inputs"]}
    return {t for s in segments for t in s["outputs"] if t not in consumed}


def _values(dtype: str, data: bytes) -> list[float] | str:
    formats = {"float32": "f", "float64": "d"}
    if dtype not in formats:
        return base64.b64encode(data).decode()
    width = struct.calcsize(formats[dtype])
    return list(struct.unpack(f"<{len(data) // width}{formats[dtype]}", data))
