"""``trustdial-verify receipt RESPONSE.json --request REQUEST.json ...``: check a TEE receipt offline.

RESPONSE.json is the gateway's ``/v1/infer`` response, or an archived ``/v1/generate`` one (it carries the
receipt, the outputs and, if requested with ``include_attestation``, the key-binding
attestation document; otherwise pass ``--attestation``). REQUEST.json is the body that was
sent (inputs or prompt, parameters and nonce). Expected PCRs (``--pcr`` or ``--pcrs``) and
the model's sha256 are mandatory; a signed measurement manifest (``--manifest`` with
``--manifest-key``) can supply both.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography import x509

from trustdial_verifier._internal import strict_json
from trustdial_verifier._internal.attestation.verify import PcrsEqual
from trustdial_verifier._internal.cli import composite_receipt
from trustdial_verifier._internal.cli.evidence_input import parse_pcr_index
from trustdial_verifier._internal.cli.report import run_check
from trustdial_verifier._internal.composite.receipt import MAX_RECEIPT_BYTES, RECEIPT_FORMAT, is_composite
from trustdial_verifier._internal.measurements.manifest import Manifest
from trustdial_verifier._internal.measurements.signed import load_public_key, load_signed_manifest
from trustdial_verifier._internal.receipts.verify import ReceiptExpectation
from trustdial_verifier._internal.tensors import Tensor
from trustdial_verifier.errors import InputError, describe_value
from trustdial_verifier.verify import verify_receipt


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "receipt", help="verify a TEE inference receipt against its attestation, or a composite (hybrid) receipt"
    )
    parser.add_argument("response", type=Path, help="gateway response JSON, or a composite receipt JSON")
    parser.add_argument("--request", type=Path, help="the request JSON that was sent (single TEE receipts)")
    parser.add_argument("--attestation", type=Path, help="key-binding attestation document (raw COSE)")
    parser.add_argument("--pcr", action="append", default=[], metavar="INDEX=HEX", help="expected PCR (repeatable)")
    parser.add_argument("--pcrs", type=Path, help='JSON {"0": "hex", ...} of expected PCRs')
    parser.add_argument(
        "--measurements",
        "--manifest",
        dest="measurements",
        type=Path,
        help="signed measurement manifest (.cose): PCRs, model and zk hashes, policy pin",
    )
    parser.add_argument("--manifest-key", type=Path, help="PEM or DER P-384 public key of the manifest signer")
    parser.add_argument("--model-sha256", action="append", default=[], metavar="HEX", help="accepted model sha256")
    parser.add_argument("--min-seq", type=int, default=0, help="reject sequence numbers below this")
    parser.add_argument("--root", type=Path, help="PEM root certificate instead of the pinned AWS Nitro root")
    parser.add_argument("--allow-debug", action="store_true", help="DANGER: accept debug-mode enclaves")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    composite_receipt.add_arguments(parser)
    parser.set_defaults(run=run)


#: What nothing but a signed manifest may supply when one is given: the flags that would replace its facts.
MANIFEST_FACT_FLAGS: dict[str, Any] = {"pcr": [], "pcrs": None, "model_sha256": []}


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError("FILE_NOT_FOUND", f"no such file: {path}")
    with path.open("rb") as handle:
        data = handle.read(MAX_RECEIPT_BYTES + 1)
    try:
        value = strict_json.loads(data, max_bytes=MAX_RECEIPT_BYTES)
    except strict_json.JsonError as err:
        raise InputError("BAD_JSON", f"{path}: not strict JSON: {err.reason} ({err.code})") from None
    if not isinstance(value, dict):
        raise InputError("BAD_JSON", f"{path}: expected a JSON object")
    return value


def _hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError as err:
        raise InputError("BAD_HEX", f"{what}: expected hex, found {describe_value(text, 40)}") from err


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise InputError("BAD_EVIDENCE", f"expected {what} as base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise InputError("BAD_EVIDENCE", f"{what}: not valid base64") from err


def _manifest(args: argparse.Namespace) -> Manifest | None:
    if args.measurements is None:
        return None
    if args.manifest_key is None:
        raise InputError("NO_MANIFEST_KEY", "a manifest is only trusted with --manifest-key (its signer's public key)")
    return load_signed_manifest(args.measurements.read_bytes(), load_public_key(args.manifest_key.read_bytes()))


def _pcrs(args: argparse.Namespace, manifest: Manifest | None) -> dict[int, bytes]:
    pcrs: dict[int, bytes] = {}
    if manifest is not None:
        for name, value in manifest.pcrs.items():
            if value is not None:
                pcrs[int(name.removeprefix("PCR"))] = _hex(value, name)
    if args.pcrs is not None:
        for index, value in _read_json(args.pcrs).items():
            if not isinstance(value, str):
                raise InputError("BAD_PCR", f"{args.pcrs}: expected PCR values as hex strings")
            number = parse_pcr_index(index, f"{args.pcrs}")
            pcrs[number] = _hex(value, f"PCR{number}")
    for item in args.pcr:
        index, sep, value = item.partition("=")
        if not sep:
            raise InputError("BAD_PCR", f"expected INDEX=HEX, found {describe_value(item)}")
        number = parse_pcr_index(index, "--pcr")
        pcrs[number] = _hex(value, f"PCR{number}")
    if not pcrs:
        raise InputError("NO_EXPECTED_PCRS", "refusing to verify without expected PCRs (--pcr or --pcrs)")
    return pcrs


def _root(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as err:
        raise InputError("BAD_ROOT", f"expected a PEM certificate in {path}: {err}") from None


def _tensors(value: Any, what: str) -> dict[str, Tensor]:
    if not isinstance(value, Mapping) or not value:
        raise InputError("BAD_EVIDENCE", f"expected {what} as a map of named tensors")
    out = {}
    for name, item in value.items():
        if not isinstance(item, Mapping) or not isinstance(item.get("shape"), list):
            raise InputError("BAD_EVIDENCE", f"{what} {describe_value(name, 40)}: expected {{dtype, shape, data}}")
        if not isinstance(item.get("dtype"), str):
            raise InputError("BAD_EVIDENCE", f"{what} {describe_value(name, 40)}: expected dtype as text")
        out[name] = Tensor(item["dtype"], tuple(item["shape"]), _b64(item.get("data"), f"{what} tensor"))
    return out


def _ids(values: Any, what: str) -> Tensor:
    if not isinstance(values, list) or not all(type(v) is int and -(1 << 63) <= v < 1 << 63 for v in values):
        raise InputError("BAD_EVIDENCE", f"expected {what} as a list of int64 integers")
    return Tensor("int64", (len(values),), struct.pack(f"<{len(values)}q", *values))


def expectation_from(
    request: Mapping[str, Any], response: Mapping[str, Any], models: frozenset[bytes], min_seq: int
) -> ReceiptExpectation:
    raw_nonce = request.get("nonce") or ""
    if not isinstance(raw_nonce, str):
        raise InputError("BAD_EVIDENCE", "expected the request nonce as hex text")
    nonce = _hex(raw_nonce, "nonce")
    if "prompt_ids" in request:
        max_new = request.get("max_new_tokens", 16)
        eos = request.get("eos_token_id")
        for name, number in (("max_new_tokens", max_new), ("eos_token_id", -1 if eos is None else eos)):
            if type(number) is not int or not -(1 << 63) <= number < 1 << 63:
                raise InputError("BAD_EVIDENCE", f"expected {name} in the request as an int64 integer")
        return ReceiptExpectation(
            models=models,
            inputs={"input_ids": _ids(request["prompt_ids"], "prompt_ids")},
            outputs={"output_ids": _ids(response.get("completion_ids"), "completion_ids")},
            nonce=nonce,
            op="generate",
            params={"decoding": "greedy", "max_new_tokens": max_new, "eos_token_id": -1 if eos is None else eos},
            min_seq=min_seq,
        )
    return ReceiptExpectation(
        models=models,
        inputs=_tensors(request.get("inputs"), "input"),
        outputs=_tensors(response.get("outputs"), "output"),
        nonce=nonce,
        op="infer",
        min_seq=min_seq,
    )


def check(args: argparse.Namespace) -> dict[str, Any]:
    if not args.response.is_file():
        raise InputError("FILE_NOT_FOUND", f"no such file: {args.response}")
    with args.response.open("rb") as handle:
        data = handle.read(MAX_RECEIPT_BYTES + 1)
    if is_composite_bytes(data):
        composite_receipt.refuse_flags(
            args,
            {"request": None, "attestation": None, "pcr": [], "pcrs": None, "model_sha256": [], "min_seq": 0},
            "a composite receipt (its PCRs, models and zk pins come from --measurements)",
        )
        return composite_receipt.check_composite(args, data)
    composite_receipt.refuse_flags(args, composite_receipt.COMPOSITE_FLAGS, "a single TEE receipt")
    if args.request is None:
        raise InputError("MISSING_ARGUMENT", "a single TEE receipt needs --request REQUEST.json")
    if args.measurements is not None:
        # the signed manifest supplies PCRs and models; an unsigned flag or file must not replace them
        composite_receipt.refuse_flags(
            args, MANIFEST_FACT_FLAGS, "a receipt checked against a signed manifest (its PCRs and models come from it)"
        )
    manifest = _manifest(args)
    pcrs = _pcrs(args, manifest)
    models = frozenset(_hex(m, "--model-sha256") for m in args.model_sha256)
    if not models and manifest is not None:
        models = frozenset(_hex(m["sha256"], f"model {name}") for name, m in manifest.models.items())
    if not models:
        raise InputError("NO_EXPECTED_MODEL", "refusing to verify without --model-sha256 or manifest models")
    response = _read_json(args.response)
    request = _read_json(args.request)
    if args.attestation is not None:
        attestation = args.attestation.read_bytes()
    elif response.get("attestation"):
        attestation = _b64(response["attestation"], "attestation")
    else:
        raise InputError("NO_ATTESTATION", "the response has no attestation document; pass --attestation FILE")
    root = _root(args.root) if args.root is not None else None
    verified = verify_receipt(
        _b64(response.get("receipt"), "receipt"),
        attestation=attestation,
        policy=PcrsEqual(pcrs),
        expected=expectation_from(request, response, models, args.min_seq),
        root=root,
        allow_debug=args.allow_debug,
    )
    statement = verified.statement
    return {
        "op": statement.op,
        "model_sha256": statement.model.hex(),
        "seq": statement.seq,
        "timestamp_ms": statement.timestamp_ms,
        "batch_size": verified.batch_root.size,
        "attestation_sha256": statement.attestation.hex(),
    }


def is_composite_bytes(data: bytes) -> bool:
    """Whether the file is (or claims to be) a composite receipt. One that is not strict JSON but names the
    composite format is treated as one, so that its refusal is the composite parser's (a rejection)."""
    try:
        return is_composite(strict_json.loads(data, max_bytes=MAX_RECEIPT_BYTES))
    except strict_json.JsonError:
        return f'"{RECEIPT_FORMAT}"'.encode() in data[:4096]  # else the single-receipt path reports why


def run(args: argparse.Namespace) -> int:
    return run_check(lambda: check(args), as_json=args.json, render=_render)


def _render(fields: Mapping[str, Any]) -> str | None:
    """A composite receipt prints its per-step table; a single receipt the default listing."""
    table = fields.get(composite_receipt.TABLE_FIELD)
    return table if isinstance(table, str) else None
