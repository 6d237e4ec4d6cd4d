"""``trustdial demo``: the interim, attestation-only end-to-end demo (``make demo``).

It starts a simulated NSM, has it attest a fresh session key bound to a fresh nonce, and verifies the
document with the standalone verifier under the simulator's root and the expected PCRs, exactly as a
third party would. It also shows two rejections (a tampered copy, and the same document under the pinned
AWS root, which must refuse simulator documents). Exit 0 only if all three outcomes are as expected.
The hybrid-pipeline demo will replace this one.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from verifier.attestation import (
    AllOf,
    AttestationDocument,
    AttestationError,
    MaxAge,
    NonceEquals,
    PcrsEqual,
    PublicKeyEquals,
    document_digest,
    verify_attestation,
)

from enclave_app.nsm.simulated import SimulatedNsm

TITLE = "trustdial demo (attestation-only, simulated NSM; the hybrid pipeline demo will replace it)"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run the attestation-only demo end to end", description=TITLE)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    result = run_demo()
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0 if result["passed"] else 1


def run_demo() -> dict[str, Any]:
    nsm = SimulatedNsm()
    session_key = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    nonce = os.urandom(32)
    expected_pcrs = {index: nsm.describe_pcr(index)[1] for index in (0, 1, 2)}
    raw = nsm.attest(nonce=nonce, public_key=session_key)
    policy = AllOf([PcrsEqual(expected_pcrs), NonceEquals(nonce), PublicKeyEquals(session_key), MaxAge(60)])

    started = time.perf_counter()
    genuine = _outcome(lambda: verify_attestation(raw, policy, root=nsm.root_certificate))
    elapsed_ms = (time.perf_counter() - started) * 1000
    tampered_raw = bytearray(raw)
    tampered_raw[len(raw) // 2] ^= 0x01
    tampered = _outcome(lambda: verify_attestation(bytes(tampered_raw), policy, root=nsm.root_certificate))
    aws_root = _outcome(lambda: verify_attestation(raw, policy))

    passed = genuine["accepted"] and not tampered["accepted"] and not aws_root["accepted"]
    return {
        "demo": "attestation-only",
        "module_id": nsm.module_id,
        "document_bytes": len(raw),
        "document_sha256": document_digest(raw).hex(),
        "nonce": nonce.hex(),
        "public_key": session_key.hex(),
        "expected_pcrs": {str(i): v.hex() for i, v in expected_pcrs.items()},
        "checks": {
            "simulator document, simulator root, expected PCRs + nonce + key + max-age 60 s": genuine,
            "tampered copy (one bit flipped)": tampered,
            "same document under the pinned AWS root": aws_root,
        },
        "verify_ms": round(elapsed_ms, 2),
        "passed": passed,
    }


def _outcome(check: Callable[[], AttestationDocument]) -> dict[str, Any]:
    try:
        check()
    except AttestationError as err:
        return {"accepted": False, "code": err.code}
    return {"accepted": True, "code": None}


def print_table(result: dict[str, Any]) -> None:
    print(TITLE)
    print(f"  enclave module_id : {result['module_id']}")
    print(f"  document          : {result['document_bytes']} bytes, sha256 {result['document_sha256'][:16]}...")
    print(f"  nonce             : {result['nonce'][:16]}...  session key: {result['public_key'][:16]}...")
    for index, value in result["expected_pcrs"].items():
        print(f"  expected PCR{index}     : {value[:32]}...")
    print()
    print(f"  {'check':<78} {'expected':<9} {'outcome'}")
    expectations = [True, False, False]
    for (name, outcome), expected in zip(result["checks"].items(), expectations, strict=True):
        got = "accepted" if outcome["accepted"] else f"rejected [{outcome['code']}]"
        mark = "ok" if outcome["accepted"] == expected else "UNEXPECTED"
        print(f"  {name:<78} {'accept' if expected else 'reject':<9} {got}  {mark}")
    print()
    if result["passed"]:
        print(
            f"VERDICT: PASS - the simulated enclave's attestation verified ({result['verify_ms']} ms) "
            "and forgeries were refused"
        )
    else:
        print("VERDICT: FAIL - at least one check did not behave as expected")
