"""Coverage-guided fuzzing of the verifier's other decoders with atheris (run by ``make fuzz``; not a
pytest module).

The first byte of each input picks the decoder, the rest is its input:

* TEE receipts: ``decode_receipt``, ``decode_statement``, ``decode_batch_root``, ``decode_seal``, and
  ``open_receipt`` under the key that sealed the seed receipts (so a mutation that keeps the seal
  intact reaches the inclusion-path and statement checks);
* the signed measurement manifest (``load_signed_manifest``) and its JSON (``parse_manifest``);
* an EIF read as a stream (``measure_eif_stream``);
* a composite (hybrid) receipt's JSON (``parse_receipt``).

The only acceptable outcomes are success or the verifier's own typed errors (``VerificationError``
and its subclasses, ``InputError``); anything else is a finding and stops the run with a
reproducer file.

Usage: python tests/fuzz/fuzz_decoders.py [-runs=N] [libFuzzer options]   (default -runs=100000)
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import atheris
from fuzz_runner import fuzz

with atheris.instrument_imports():
    from trustdial_verifier._internal.composite.receipt import parse_receipt
    from trustdial_verifier._internal.eif.reader import measure_eif_stream
    from trustdial_verifier._internal.measurements.manifest import parse_manifest
    from trustdial_verifier._internal.measurements.signed import load_signed_manifest
    from trustdial_verifier._internal.receipts.model import decode_batch_root, decode_receipt, decode_statement
    from trustdial_verifier._internal.receipts.seal import decode_seal
    from trustdial_verifier._internal.receipts.verify import open_receipt
    from trustdial_verifier.errors import InputError, VerificationError

import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.pipeline import ReceiptPipeline
from infra.measurements.create import create_manifest
from infra.measurements.signers import LocalKeySigner
from infra.measurements.signing import sign_manifest

DATA = Path(__file__).resolve().parent.parent / "data"
ATTESTATION = b"\x5a" * 32
KEY = ReceiptKey.generate("p256")
PUBLIC_KEY = KEY.public_key_der()
MANIFEST_SIGNER = LocalKeySigner(
    ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
)
MANIFEST_PUBLIC = MANIFEST_SIGNER.public_key()


def _open(data: bytes) -> None:
    open_receipt(data, public_key=PUBLIC_KEY, attestation_digest=ATTESTATION)


def _eif(data: bytes) -> None:
    measure_eif_stream(io.BytesIO(data), total_size=len(data))


DECODERS: list[Callable[[bytes], object]] = [
    decode_receipt,
    decode_statement,
    decode_batch_root,
    decode_seal,
    _open,
    parse_manifest,
    lambda data: load_signed_manifest(data, MANIFEST_PUBLIC),
    _eif,
    parse_receipt,
]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    decoder = DECODERS[data[0] % len(DECODERS)]
    try:
        decoder(data[1:])
    except (VerificationError, InputError):
        pass


def _receipts() -> list[bytes]:
    """Genuine receipts: a batch of five (paths of depth 3) and a batch of one."""
    out: list[bytes] = []
    pipeline = ReceiptPipeline(KEY, ATTESTATION, max_batch=5, max_wait=60, threaded=False, on_receipt=out.append)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for index in range(6):
        pipeline.submit("infer", b"\x11" * 32, {"x": x}, {"y": x * index}, bytes([index]) * 16, want_future=False)
    pipeline.drain()
    pipeline.close()
    return out


def _seed(directory: Path, selector: int, name: str, payload: bytes) -> None:
    (directory / name).write_bytes(bytes([selector]) + payload)


def seed_corpus(directory: Path) -> None:
    receipts = _receipts()
    for index, raw in enumerate(receipts):
        receipt = decode_receipt(raw)
        seal = decode_seal(receipt.seal)
        _seed(directory, 0, f"receipt_{index}", raw)
        _seed(directory, 1, f"statement_{index}", receipt.statement)
        _seed(directory, 2, f"batch_root_{index}", seal.payload)
        _seed(directory, 3, f"seal_{index}", receipt.seal)
        _seed(directory, 4, f"open_{index}", raw)
    for path in sorted((DATA / "eif").glob("*.eif")):
        _seed(directory, 7, path.name, path.read_bytes())
    manifest = create_manifest(
        eif=DATA / "eif" / "kat1.rust.eif",
        source_revision="0" * 40,
        build_time="2026-11-26T00:00:00Z",
        blobs={"kernel": "ab" * 32},
        models={"mlp": {"sha256": "cd" * 32}},
    )
    _seed(directory, 5, "manifest", manifest)
    _seed(directory, 6, "manifest_signed", sign_manifest(manifest, MANIFEST_SIGNER))
    composite = {
        "format": "trustdial.composite-receipt/1",
        "steps": [{"index": 0, "mode": "tee", "input": {}, "output": {}}],
    }
    _seed(directory, 8, "composite_minimal", json.dumps(composite).encode())


def main() -> None:
    fuzz(
        test_one_input, seed_corpus, what=f"{len(DECODERS)} decoders", max_len=32768, prefix="trustdial-fuzz-decoders-"
    )


if __name__ == "__main__":
    main()
