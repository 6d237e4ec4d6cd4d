"""Issue 15, the bound: every verifier entry point answers any input up to 1 MB with a typed result
(success, a VerificationError or an InputError) within 1 s and 256 MB.

Inputs are mutations of genuine evidence: the shipped AWS Nitro documents, receipts sealed by the
enclave's own receipt pipeline in-process, a signed measurement manifest, the EIF test images,
composite receipts from the hybrid fixtures, artifacts/settings/proof/tensor JSON as the prover
writes them, and gateway responses. Mutations flip, insert, delete, truncate and grow (to 1 MB), and
splice in decoder bombs: CBOR shared references (tags 28/29) describing 2**60 elements, bignums
(tag 2) past the int-string limit, deep nesting, JSON integers of 5000 digits, 1e400, lone surrogates,
duplicate keys. Hypothesis is derandomized under CI (tests/conftest.py profile ``ci``).

Time is measured per call with time.perf_counter and memory as tracemalloc's peak per call (tracemalloc
also slows every call, so the times are an upper bound). The assertion allows SLACK times the 1 s
bound, so that a loaded 2-core CI box does not flake; the worst observed values are written to
stderr (and ``$TRUSTDIAL_BOUND_REPORT`` if set), and are what the bound is judged by."""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import cbor2
import numpy as np
import pytest
import trustdial_verifier
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hybrid.composite_fixtures import build
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trustdial_verifier._internal.attestation.verify import PcrsEqual, verify_attestation
from trustdial_verifier._internal.client import parse_response, tensors_from_json
from trustdial_verifier._internal.composite.evidence_tee import check_tee_evidence
from trustdial_verifier._internal.composite.evidence_zk import check_zk_evidence
from trustdial_verifier._internal.composite.verify import verify_composite
from trustdial_verifier._internal.eif.reader import measure_eif_stream
from trustdial_verifier._internal.measurements import load_signed_manifest, parse_manifest
from trustdial_verifier._internal.proof.artifacts import load_artifacts
from trustdial_verifier._internal.proof.instances import layout_from_settings
from trustdial_verifier._internal.proof.tensors import load_tensor_file
from trustdial_verifier._internal.receipts.attested import verify_receipt
from trustdial_verifier._internal.receipts.verify import ReceiptExpectation, open_receipt
from trustdial_verifier._internal.strict_json import loads as strict_loads
from trustdial_verifier.errors import InputError, VerificationError

from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.pipeline import ReceiptPipeline
from infra.measurements.create import create_manifest
from infra.measurements.signers import LocalKeySigner
from infra.measurements.signing import sign_manifest

DATA = Path(__file__).resolve().parent.parent / "data"
NITRO = DATA / "nitro"
MAX_INPUT = 1 << 20
BOUND_SECONDS = 1.0
BOUND_BYTES = 256 << 20
SLACK = 4.0
EXAMPLES_PER_ENTRY = int(os.environ.get("TRUSTDIAL_BOUND_EXAMPLES", "50"))


def _dag_bytes(depth: int = 60) -> bytes:
    node: object = [1]
    for _ in range(depth):
        node = [node, node]
    return cbor2.dumps(node, value_sharing=True)


CBOR_BOMBS = [
    _dag_bytes(),
    b"\xd8\x1c\x81\xd8\x1d\x00",  # 28([29(0)]): a reference to the array that contains it
    b"\xc2\x59\x08\x00" + b"\xff" * 2048,  # tag 2, a 16384-bit bignum: ~4900 decimal digits
    b"\x81" * 5000 + b"\x00",
    b"\x9f" * 2000,
    b"\xbf" * 2000,
    b"\xd2" * 3000 + b"\x80",
    b"\xfb\x7f\xf0\x00\x00\x00\x00\x00\x00",  # +inf
    b"\x5f\x41\x00\xff",  # chunked bytes
]
JSON_BOMBS = [
    b"9" * 5000,
    b"-" + b"9" * 5000,
    b"1e400",
    b"NaN",
    b'"\\ud800"',
    b'{"\\udc00": 1}',
    b"[" * 100_000,
    b'{"a": 1, "a": 2}',
    b'{"seconds": 1e400}',
    b"\xed\xa0\x80",  # a surrogate encoded as UTF-8 (invalid)
]


@dataclass
class Worst:
    seconds: float = 0.0
    bytes: int = 0
    calls: int = 0
    slowest: str = ""
    largest: str = ""


@dataclass
class Record:
    per_entry: dict[str, Worst] = field(default_factory=dict)

    def note(self, entry: str, seconds: float, peak: int, size: int) -> None:
        worst = self.per_entry.setdefault(entry, Worst())
        worst.calls += 1
        if seconds > worst.seconds:
            worst.seconds, worst.slowest = seconds, f"{size} bytes"
        if peak > worst.bytes:
            worst.bytes, worst.largest = peak, f"{size} bytes"


RECORD = Record()


def _bounded(entry: str, call: Callable[[bytes], object], data: bytes) -> None:
    assert len(data) <= MAX_INPUT
    tracemalloc.reset_peak()
    started = time.perf_counter()
    try:
        call(data)
    except (VerificationError, InputError):
        pass
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    RECORD.note(entry, seconds, peak, len(data))
    assert seconds < BOUND_SECONDS * SLACK, f"{entry}: {len(data)} bytes took {seconds:.2f} s"
    assert peak < BOUND_BYTES, f"{entry}: {len(data)} bytes peaked at {peak / 2**20:.1f} MiB"


@st.composite
def mutation(draw: st.DrawFn, seeds: list[bytes], bombs: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "bomb", "truncate", "grow", "byte"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "bomb":
            bomb = draw(st.sampled_from(bombs))
            if draw(st.booleans()):
                data[at:at] = bomb
            else:
                data[at : at + len(bomb)] = bomb
        elif op == "truncate":
            del data[at:]
        elif op == "grow":
            target = draw(st.sampled_from([4096, 65536, MAX_INPUT]))
            fill = bytes(data) or b"\x00"
            data += (fill * (target // len(fill) + 1))[: max(target - len(data), 0)]
    return bytes(data[:MAX_INPUT])


# --- genuine evidence, built once ---------------------------------------------------------------------


def _nitro() -> tuple[list[bytes], dict[bytes, tuple[datetime, dict[int, bytes]]]]:
    entries = json.loads((NITRO / "expected.json").read_text())
    seeds, expectations = [], {}
    for entry in entries:
        if not entry["file"].startswith("BAD_") and entry.get("pcrs"):
            raw = (NITRO / entry["file"]).read_bytes()
            at = datetime.fromtimestamp(int(entry["timestamp_ms"]) / 1000, tz=UTC)
            seeds.append(raw)
            expectations[raw] = (at, {int(k): bytes.fromhex(v) for k, v in entry["pcrs"].items()})
    return seeds, expectations


NITRO_SEEDS, NITRO_EXPECTED = _nitro()
NITRO_AT, NITRO_PCRS = next(iter(NITRO_EXPECTED.values()))

RECEIPT_KEY = ReceiptKey.generate("p256")
RECEIPT_ATTESTATION = b"\x5a" * 32


def _receipts() -> list[bytes]:
    out: list[bytes] = []
    pipeline = ReceiptPipeline(
        RECEIPT_KEY, RECEIPT_ATTESTATION, max_batch=5, max_wait=60, threaded=False, on_receipt=out.append
    )
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for index in range(6):
        pipeline.submit("infer", b"\x11" * 32, {"x": x}, {"y": x * index}, bytes([index]) * 16, want_future=False)
    pipeline.drain()
    pipeline.close()
    return out


RECEIPT_SEEDS = _receipts()


def _manifest() -> tuple[bytes, bytes, ec.EllipticCurvePublicKey]:
    private = ec.generate_private_key(ec.SECP384R1())
    signer = LocalKeySigner(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    manifest = create_manifest(
        eif=DATA / "eif" / "kat1.rust.eif",
        source_revision="0" * 40,
        build_time="2026-11-26T00:00:00Z",
        blobs={"kernel": "ab" * 32},
        models={"mlp": {"sha256": "cd" * 32}},
    )
    return manifest, sign_manifest(manifest, signer), private.public_key()


MANIFEST_JSON, MANIFEST_SIGNED, MANIFEST_KEY = _manifest()
EIF_SEEDS = [path.read_bytes() for path in sorted((DATA / "eif").glob("*.eif"))]
SCENARIOS = [build(), build(boundary="public"), build(modes=("tee", "tee+zk"))]
COMPOSITE_SEEDS = [json.dumps(s.document).encode() for s in SCENARIOS]

ARTIFACTS_SEED = json.dumps(
    {
        "format": "trustdial-zk-artifacts/1",
        "ezkl_version": "23.0.5",
        "srs_kind": "dev-insecure",
        "input_visibility": "public",
        "output_visibility": "public",
        "param_visibility": "fixed",
        "logrows": 11,
        "input_scale": 13,
        "output_scale": 13,
        "files": {
            role: {"path": f"{role}.bin", "sha256": "ab" * 32}
            for role in ("model", "settings", "compiled_circuit", "vk", "srs", "pk")
        },
    }
).encode()
SETTINGS_SEED = json.dumps(
    {
        "run_args": {
            "input_visibility": {"Hashed": {"hash_is_public": True, "outlets": []}},
            "output_visibility": "Public",
            "param_visibility": "Fixed",
            "logrows": 11,
        },
        "input_types": ["F32"],
        "output_types": ["F32"],
        "model_input_scales": [13],
        "model_output_scales": [13],
        "model_instance_shapes": [[1, 2]],
        "num_rows": 1234,
        "tolerance": {"val": 0.0, "arg": {"scale": 1.0}},
    }
).encode()
TENSOR_SEEDS = [
    json.dumps({"dtype": "float32", "shape": [1, 2], "data_b64": base64.b64encode(b"\x00" * 8).decode()}).encode(),
    json.dumps({"input_data": [[0.5, -1.25, 3.0]]}).encode(),
]
RESPONSE_SEEDS = [
    json.dumps(
        {
            "outputs": {"y": {"dtype": "float32", "shape": [1, 2], "data": base64.b64encode(b"\x00" * 8).decode()}},
            "receipt": base64.b64encode(RECEIPT_SEEDS[0]).decode(),
        }
    ).encode(),
    json.dumps({"error": {"code": "MODEL_UNKNOWN", "message": "no such model"}}).encode(),
]


# --- entry points ---------------------------------------------------------------------------------------


def _attestation(data: bytes) -> None:
    at, pcrs = NITRO_EXPECTED.get(data, (NITRO_AT, NITRO_PCRS))
    verify_attestation(data, PcrsEqual(pcrs), at=at, allow_debug=True)


def _receipt(data: bytes) -> None:
    open_receipt(data, public_key=RECEIPT_KEY.public_key_der(), attestation_digest=RECEIPT_ATTESTATION)


def _receipt_with_document(data: bytes) -> None:
    # the attestation document as the mutated input, the receipt as sealed
    verify_receipt(
        RECEIPT_SEEDS[0],
        attestation=data,
        policy=PcrsEqual(NITRO_PCRS),
        expected=ReceiptExpectation(models=frozenset({b"\x11" * 32}), inputs={}, outputs={}, nonce=b""),
        allow_debug=True,
    )


def _manifest_signed(data: bytes) -> None:
    load_signed_manifest(data, MANIFEST_KEY)


def _eif(data: bytes) -> None:
    measure_eif_stream(io.BytesIO(data), total_size=len(data))


def _composite(data: bytes) -> None:
    scenario = SCENARIOS[0]
    verify_composite(
        data,
        manifest=scenario.manifest,
        policy=None,
        checkers={"tee": check_tee_evidence, "zk": check_zk_evidence},
    )


# --- the same evidence through the public API (trustdial_verifier's top-level functions) -----------------

POLICY_SEED = b"""format = "trustdial.pipeline/1"
name = "reference-decision"
model = "reference.onnx"

[[segments]]
name = "body"
inputs = ["input"]
outputs = ["embedding"]
mode = "tee"
reason = "feature extractor"

[[segments]]
name = "head"
inputs = ["embedding"]
outputs = ["decision"]
mode = "zk"
reason = "the decision"

[tensors]
input = "private"
embedding = "private"
decision = "public"
"""
TOML_BOMBS = [b"a = " + b"9" * 5000, b"a = " + b"[" * 5000, b"a = 1\na = 2", b"a = '\xed\xa0\x80'", b"\xff\xfe"]
MANIFEST_KEY_PEM = MANIFEST_KEY.public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def _public_attestation(data: bytes) -> None:
    at, pcrs = NITRO_EXPECTED.get(data, (NITRO_AT, NITRO_PCRS))
    trustdial_verifier.verify_attestation(data, trustdial_verifier.PcrsEqual(pcrs), at=at, allow_debug=True)


def _public_receipt(data: bytes) -> None:
    # the key-binding attestation document as the mutated input (what verify_receipt decodes first), beside a
    # receipt the enclave's pipeline sealed; the receipt's own decoder is bounded by the "receipt" entry
    _, pcrs = NITRO_EXPECTED.get(data, (NITRO_AT, NITRO_PCRS))
    expected = trustdial_verifier.ReceiptExpectation(models=frozenset({b"\x11" * 32}), inputs={}, outputs={}, nonce=b"")
    trustdial_verifier.verify_receipt(
        RECEIPT_SEEDS[0],
        attestation=data,
        policy=trustdial_verifier.PcrsEqual(pcrs),
        expected=expected,
        allow_debug=True,
    )


def _public_manifest(data: bytes) -> None:
    trustdial_verifier.verify_manifest(data, MANIFEST_KEY_PEM)


def _public_composite(data: bytes) -> None:
    options = trustdial_verifier.CompositeOptions(manifest=MANIFEST_SIGNED, manifest_key=MANIFEST_KEY_PEM)
    trustdial_verifier.verify_composite(data, options)


def _public_composite_manifest(data: bytes) -> None:
    # the signed manifest as the mutated input, beside a genuine composite receipt
    options = trustdial_verifier.CompositeOptions(manifest=data, manifest_key=MANIFEST_KEY_PEM)
    trustdial_verifier.verify_composite(COMPOSITE_SEEDS[0], options)


def _public_eif(data: bytes) -> None:
    directory = SCRATCH / "eif"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "image.eif").write_bytes(data)
    trustdial_verifier.recompute_pcrs(directory / "image.eif")


def _in_file(name: str, reader: Callable[[Path], object]) -> Callable[[bytes], None]:
    def call(data: bytes) -> None:
        directory = SCRATCH / "files"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
        reader(directory)

    return call


def _settings(data: bytes) -> None:
    try:
        document = strict_loads(data)
    except VerificationError:
        return
    layout_from_settings(document)


def _response(data: bytes) -> None:
    body = parse_response("POST", "/v1/infer", 200, data)
    tensors_from_json(body.get("outputs"))


SCRATCH = Path(os.environ.get("TMPDIR", "/tmp")) / f"trustdial-bounded-{os.getpid()}"

ENTRIES: list[tuple[str, Callable[[bytes], object], list[bytes], list[bytes]]] = [
    ("attestation", _attestation, NITRO_SEEDS, CBOR_BOMBS),
    ("receipt", _receipt, RECEIPT_SEEDS, CBOR_BOMBS),
    ("receipt+attestation", _receipt_with_document, NITRO_SEEDS, CBOR_BOMBS),
    ("manifest (signed)", _manifest_signed, [MANIFEST_SIGNED], CBOR_BOMBS + JSON_BOMBS),
    ("manifest (json)", parse_manifest, [MANIFEST_JSON], JSON_BOMBS),
    ("eif", _eif, EIF_SEEDS, CBOR_BOMBS + JSON_BOMBS),
    ("composite", _composite, COMPOSITE_SEEDS, JSON_BOMBS),
    ("proof artifacts.json", _in_file("artifacts.json", load_artifacts), [ARTIFACTS_SEED], JSON_BOMBS),
    ("proof settings.json", _settings, [SETTINGS_SEED], JSON_BOMBS),
    (
        "proof tensor file",
        _in_file("tensor.json", lambda d: load_tensor_file(d / "tensor.json", side="input")),
        TENSOR_SEEDS,
        JSON_BOMBS,
    ),
    ("client response", _response, RESPONSE_SEEDS, JSON_BOMBS),
    ("public verify_attestation", _public_attestation, NITRO_SEEDS, CBOR_BOMBS),
    ("public verify_receipt (document)", _public_receipt, NITRO_SEEDS, CBOR_BOMBS),
    ("public verify_manifest", _public_manifest, [MANIFEST_SIGNED], CBOR_BOMBS + JSON_BOMBS),
    ("public verify_composite", _public_composite, COMPOSITE_SEEDS, JSON_BOMBS),
    ("public verify_composite (manifest)", _public_composite_manifest, [MANIFEST_SIGNED], CBOR_BOMBS + JSON_BOMBS),
    ("public recompute_pcrs", _public_eif, EIF_SEEDS, CBOR_BOMBS + JSON_BOMBS),
    ("public parse_pipeline_policy", trustdial_verifier.parse_pipeline_policy, [POLICY_SEED], TOML_BOMBS + JSON_BOMBS),
]


@pytest.fixture(scope="module", autouse=True)
def memory_tracing() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()
        report = {
            name: {
                "calls": w.calls,
                "worst_seconds": round(w.seconds, 4),
                "worst_peak_mib": round(w.bytes / 2**20, 2),
                "slowest_input": w.slowest,
                "largest_peak_input": w.largest,
            }
            for name, w in RECORD.per_entry.items()
        }
        text = json.dumps(report, indent=1)
        sys.stderr.write(f"bounded-input worst cases:\n{text}\n")
        target = os.environ.get("TRUSTDIAL_BOUND_REPORT")
        if target:
            Path(target).write_text(text + "\n")


@pytest.mark.parametrize(("entry", "call", "seeds", "bombs"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_every_entry_point_answers_any_input_within_the_bound(
    entry: str, call: Callable[[bytes], object], seeds: list[bytes], bombs: list[bytes]
) -> None:
    @settings(
        max_examples=EXAMPLES_PER_ENTRY,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        deadline=None,
    )
    @given(data=mutation(seeds, bombs))
    def check(data: bytes) -> None:
        _bounded(entry, call, data)

    for seed in seeds[:3]:  # the genuine evidence itself, and each bomb alone
        _bounded(entry, call, seed)
    for bomb in bombs:
        _bounded(entry, call, bomb)
    check()


def test_genuine_seeds_are_accepted_where_they_should_be() -> None:
    """The mutations start from evidence that verifies: a fuzz over garbage would prove little."""
    for raw in NITRO_SEEDS:
        _attestation(raw)
    for raw in RECEIPT_SEEDS:
        _receipt(raw)
    assert load_signed_manifest(MANIFEST_SIGNED, MANIFEST_KEY).raw == MANIFEST_JSON
    for raw in EIF_SEEDS:
        measure_eif_stream(io.BytesIO(raw), total_size=len(raw))
    assert parse_response("POST", "/v1/infer", 200, RESPONSE_SEEDS[0])["outputs"]
    for raw in NITRO_SEEDS:
        _public_attestation(raw)
    assert trustdial_verifier.verify_manifest(MANIFEST_SIGNED, MANIFEST_KEY_PEM).raw == MANIFEST_JSON
    assert [s.name for s in trustdial_verifier.parse_pipeline_policy(POLICY_SEED).segments] == ["body", "head"]
    for path in sorted((DATA / "eif").glob("*.eif")):
        _public_eif(path.read_bytes())
