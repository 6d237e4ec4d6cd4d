"""``trustdial-verify chat RESPONSE --request REQUEST ...``: check a chat or text completion offline.

RESPONSE is the gateway's JSON answer, or a saved stream (its ``data:`` lines, as sent). REQUEST is the body that
was sent. The receipt key comes from the key-binding attestation document (``--attestation``, raw COSE), verified
against the expected PCRs as of its own timestamp; ``--bundle-digest`` is the accepted model identity;
``--nonce`` the nonce sent in ``X-Trustdial-Nonce`` (none: empty). ``--replay BUNDLE`` then re-runs the completion
with that bundle and the recorded seed and requires identical tokens (needs ``trustdial-verifier[llm]``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from trustdial_verifier._internal.attestation.verify import PcrsEqual
from trustdial_verifier._internal.cli.receipt_command import _hex, _manifest, _pcrs, _read_json, _root
from trustdial_verifier._internal.cli.report import run_check
from trustdial_verifier._internal.llm.request import Endpoint
from trustdial_verifier._internal.llm.verify import (
    ChatExpectation,
    StreamVerifier,
    VerifiedCompletion,
    verify_completion,
)
from trustdial_verifier._internal.receipts.attested import verify_binding_document
from trustdial_verifier.errors import InputError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("chat", help="verify an LLM completion (plain or a saved stream) offline")
    parser.add_argument("response", type=Path, help="the response JSON, or the saved event stream")
    parser.add_argument("--request", type=Path, required=True, help="the request JSON that was sent")
    parser.add_argument("--attestation", type=Path, required=True, help="key-binding attestation document (COSE)")
    parser.add_argument("--pcr", action="append", default=[], metavar="INDEX=HEX", help="expected PCR (repeatable)")
    parser.add_argument("--pcrs", type=Path, help='JSON {"0": "hex", ...} of expected PCRs')
    parser.add_argument("--bundle-digest", action="append", default=[], metavar="HEX", help="accepted bundle digest")
    parser.add_argument(
        "--measurements", "--manifest", dest="measurements", type=Path,
        help="signed measurement manifest (.cose): PCRs, and the bundle digest of the requested model",
    )  # fmt: skip
    parser.add_argument("--manifest-key", type=Path, help="PEM or DER P-384 public key of the manifest signer")
    parser.add_argument("--endpoint", choices=[e.value for e in Endpoint], default=Endpoint.CHAT.value)
    parser.add_argument("--nonce", default="", help="hex nonce sent in X-Trustdial-Nonce (default: none)")
    parser.add_argument("--min-seq", type=int, default=0, help="reject sequence numbers below this")
    parser.add_argument("--replay", type=Path, metavar="BUNDLE", help="re-run locally with this bundle and the seed")
    parser.add_argument("--root", type=Path, help="PEM root certificate instead of the pinned AWS Nitro root")
    parser.add_argument("--allow-debug", action="store_true", help="DANGER: accept debug-mode enclaves")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    parser.set_defaults(run=run)


def _events(text: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        try:
            value = json.loads(line[5:])
        except json.JSONDecodeError as err:
            raise InputError("BAD_JSON", f"an event of the stream is not JSON: {err}") from err
        if not isinstance(value, dict):
            raise InputError("BAD_JSON", "an event of the stream is not a JSON object")
        events.append(value)
    return events


def check(args: argparse.Namespace) -> dict[str, Any]:
    manifest = _manifest(args)
    pcrs = _pcrs(args, manifest)
    request = _read_json(args.request)
    bundles = frozenset(_hex(h, "--bundle-digest") for h in args.bundle_digest)
    if not bundles and manifest is not None:
        pinned = manifest.models.get(str(request.get("model")))
        if pinned is not None:
            bundles = frozenset({_hex(pinned["sha256"], f"manifest model {request.get('model')}")})
    if not bundles:
        raise InputError("NO_EXPECTED_MODEL", "refusing to verify without --bundle-digest or the model in --manifest")
    root = _root(args.root) if args.root else None
    binding = verify_binding_document(
        args.attestation.read_bytes(), PcrsEqual(pcrs), root=root, allow_debug=args.allow_debug
    )
    if binding.public_key is None:
        raise InputError("NO_KEY", "the attestation document binds no key")
    expected = ChatExpectation(
        public_key=binding.public_key, attestation_digest=binding.sha256, bundles=bundles,
        endpoint=Endpoint(args.endpoint), request=request, nonce=_hex(args.nonce, "--nonce"),
        min_seq=args.min_seq, not_before_ms=binding.timestamp_ms,
    )  # fmt: skip
    text = args.response.read_text(encoding="utf-8")
    verified: VerifiedCompletion
    if text.lstrip().startswith("data:"):
        stream = StreamVerifier(expected)
        for event in _events(text):
            stream.check_event(event)
        verified = stream.finish()
    else:
        verified = verify_completion(_read_json(args.response), expected)
    if args.replay is not None:
        from trustdial_verifier._internal.llm.replay import replay

        replay(args.replay, verified)
    return {
        "text": verified.text,
        "finish_reason": verified.finish_reason,
        "prompt_tokens": len(verified.prompt_ids),
        "completion_tokens": len(verified.completion_ids),
        "seed": verified.record.seed,
        "seed_source": verified.record.seed_source.value,
        "bundle_digest": verified.bundle_digest.hex(),
        "seq": verified.statement.seq,
        "timestamp_ms": verified.statement.timestamp_ms,
        "replayed": args.replay is not None,
    }


def run(args: argparse.Namespace) -> int:
    return run_check(lambda: check(args), as_json=args.json)
