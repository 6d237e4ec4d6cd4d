"""docs/llm-receipts.md's test vectors (tests/data/llm/receipt-vectors.json), recomputed twice: from the spec with
nothing but hashlib, struct, cbor2 and cryptography, and by the code."""

from __future__ import annotations

import hashlib
import json
import struct

import cbor2
from cryptography.hazmat.primitives.asymmetric import ed25519
from trustdial_verifier._internal.llm.bundle import BundleFile, BundleManifest
from trustdial_verifier._internal.llm.request import Endpoint, parse_request, resolve
from trustdial_verifier._internal.llm.statements import chain_next, chain_start, completion_outputs, input_digest
from trustdial_verifier._internal.receipts.verify import open_receipt
from trustdial_verifier._internal.tensors import commit_tensors

from llm.stack import DATA

V = json.loads((DATA / "receipt-vectors.json").read_text())


def _tensors(named: dict[str, tuple[str, bytes, int]]) -> bytes:
    """docs/receipts.md §2, written out: MAGIC, count, then per name (sorted) its header and data."""
    out = b"trustdial/tensors/v1\x00" + struct.pack(">I", len(named))
    for name in sorted(named, key=lambda n: n.encode()):
        dtype, data, count = named[name]
        out += struct.pack(">I", len(name)) + name.encode() + bytes([len(dtype)]) + dtype.encode()
        out += struct.pack(">IQ", 1, count) + struct.pack(">Q", len(data)) + data
    return hashlib.sha256(out).digest()


def test_bundle_digest() -> None:
    b = V["bundle"]
    files = sorted([f["path"], f["size"], hashlib.sha256(f["content"].encode()).digest()] for f in b["files"])
    canonical = cbor2.dumps({"v": 1, "type": "trustdial/llm-bundle", "files": files, "meta": b["meta"]}, canonical=True)
    assert canonical.hex() == b["canonical_hex"]
    assert hashlib.sha256(canonical).hexdigest() == b["digest"]
    manifest = BundleManifest(
        tuple(BundleFile(f["path"], f["size"], hashlib.sha256(f["content"].encode()).digest()) for f in b["files"]),
        b["meta"],
    )
    assert manifest.digest().hex() == b["digest"]


def test_request_record() -> None:
    r = V["request"]
    body = r["body"]
    record = {
        "v": 1, "type": "trustdial/llm-request", "endpoint": "chat.completions", "model": body["model"],
        "messages": [[m["role"], m["content"]] for m in body["messages"]], "temperature": body["temperature"],
        "top_p": 1.0, "top_k": 0, "max_tokens": r["max_tokens"], "stop": [body["stop"]], "seed": r["seed"],
        "seed_source": r["seed_source"], "stream": False, "include_usage": False, "user": None,
    }  # fmt: skip
    assert cbor2.dumps(record, canonical=True).hex() == r["record_hex"]
    code = resolve(parse_request(Endpoint.CHAT, body), max_tokens=r["max_tokens"], seed=r["seed"]).encode()
    assert code.hex() == r["record_hex"]


def test_input_digest_chain_and_output_digest() -> None:
    c = V["completion"]
    record = bytes.fromhex(V["request"]["record_hex"])
    ids = c["prompt_ids"]
    digest = _tensors({"prompt_ids": ("int64", struct.pack(f"<{len(ids)}q", *ids), len(ids)),
                       "request": ("uint8", record, len(record))})  # fmt: skip
    assert digest.hex() == c["input_digest"] == input_digest(record, ids).hex()
    chain = hashlib.sha256(b"trustdial/llm-chain/v1\x00" + digest).digest()
    assert chain.hex() == c["chain"][0] == chain_start(digest).hex()
    code_chain = chain
    for chunk, expected in zip(c["chunks"], c["chain"][1:], strict=True):
        payload = cbor2.dumps([chunk["index"], chunk["token_ids"], chunk["text"], chunk["finish_reason"]])
        assert payload.hex() == chunk["payload_hex"]
        chain = hashlib.sha256(chain + payload).digest()
        code_chain = chain_next(code_chain, chunk["index"], chunk["token_ids"], chunk["text"], chunk["finish_reason"])
        assert chain.hex() == expected == code_chain.hex()
    out = c["completion_ids"]
    text = c["text"].encode()
    digest_out = _tensors({"completion_ids": ("int64", struct.pack(f"<{len(out)}q", *out), len(out)),
                           "text": ("uint8", text, len(text))})  # fmt: skip
    assert digest_out.hex() == c["output_digest"] == commit_tensors(completion_outputs(out, c["text"])).hex()
    assert "".join(ch["text"] for ch in c["chunks"]) == c["text"]


def test_sealed_chunk_receipt() -> None:
    r = V["receipt"]
    receipt = cbor2.loads(bytes.fromhex(r["receipt_hex"]))
    assert set(receipt) == {"v", "statement", "seal", "index", "path"} and receipt["path"] == []
    statement = cbor2.loads(receipt["statement"])
    assert statement["op"] == "llm-chunk" and statement["params"] == {"index": 1}
    assert statement["model"].hex() == V["bundle"]["digest"]
    assert statement["input"]["digest"] == _tensors(
        {"input_digest": ("uint8", bytes.fromhex(V["completion"]["input_digest"]), 32)}
    )
    assert statement["output"]["digest"] == _tensors(
        {"chain": ("uint8", bytes.fromhex(V["completion"]["chain"][1]), 32)}
    )
    protected, _, payload, signature = cbor2.loads(receipt["seal"])
    root = cbor2.loads(payload)
    assert root["root"] == hashlib.sha256(b"\x00" + receipt["statement"]).digest() and root["size"] == 1
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(r["ed25519_private_key_hex"])).public_key()
    key.verify(signature, cbor2.dumps(["Signature1", protected, b"", payload]))
    opened = open_receipt(bytes.fromhex(r["receipt_hex"]), public_key=bytes.fromhex(r["public_key_der_hex"]),
                          attestation_digest=bytes.fromhex(r["attestation_digest"]))  # fmt: skip
    assert opened.statement.seq == r["seq"] and opened.statement.timestamp_ms == r["timestamp_ms"]
