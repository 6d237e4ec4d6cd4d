"""The sealed-model format (docs/sealed-models.md §2-4): the committed vector read by the code and by an independent
reader written from the document, round trips, a strict header, and every tampering refused with a typed error
before anything is loaded."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave_app.sealed.errors import SealedModelError
from enclave_app.sealed.header import parse_header
from enclave_app.sealed.serve_options import load_sealed_models
from enclave_app.sealed.unseal import RsaFileUnwrapper, unseal
from trustdial.cli import build_parser
from trustdial.model_seal.data_keys import RsaFileDataKeys
from trustdial.model_seal.seal import seal_model

DATA = Path(__file__).resolve().parents[1] / "data" / "sealed"
VECTOR, PLAIN = DATA / "vector", DATA / "plain"
VECTOR_KEY = serialization.load_pem_private_key((DATA / "key.pem").read_bytes(), None)
assert isinstance(VECTOR_KEY, rsa.RSAPrivateKey)


def test_the_committed_vector_unseals_to_the_committed_plaintext() -> None:
    model = unseal(VECTOR, RsaFileUnwrapper(VECTOR_KEY))
    assert dict(model.files) == {p.name: p.read_bytes() for p in PLAIN.iterdir()}
    assert model.header.model == "model.onnx"
    assert model.model_sha256 == hashlib.sha256((PLAIN / "model.onnx").read_bytes()).digest()


def test_an_independent_reader_written_from_the_document_reads_the_vector() -> None:
    """§2, §4 and §10 only: AAD = format || 0x00 || SHA-256(header bytes) || uint32be(index) || name; blob = ct || tag;
    blob i is NNNN.sealed; the vector's data key is 00..1f (§10)."""
    raw = (VECTOR / "header.json").read_bytes()
    header = json.loads(raw)
    digest = hashlib.sha256(raw).digest()
    for index, entry in enumerate(header["files"]):
        aad = b"trustdial-sealed-model/1\x00" + digest + index.to_bytes(4, "big") + entry["name"].encode()
        blob = (VECTOR / f"{index:04d}.sealed").read_bytes()
        plaintext = AESGCM(bytes(range(32))).decrypt(bytes.fromhex(entry["nonce"]), blob, aad)
        assert plaintext == (PLAIN / entry["name"]).read_bytes()
        assert hashlib.sha256(plaintext).hexdigest() == entry["sha256"] and len(plaintext) == entry["size"]
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    assert VECTOR_KEY.decrypt(base64.b64decode(header["key"]["encrypted_data_key"]), oaep) == bytes(range(32))
    assert raw == json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n"  # canonical bytes


@pytest.fixture
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def sealed(tmp_path: Path, key: rsa.RSAPrivateKey) -> Path:
    seal_model(PLAIN, tmp_path / "sealed", RsaFileDataKeys(key.public_key()))
    return tmp_path / "sealed"


def refused(directory: Path, key: rsa.RSAPrivateKey) -> str:
    with pytest.raises(SealedModelError) as caught:
        unseal(directory, RsaFileUnwrapper(key))
    return caught.value.code


def test_round_trip_with_fresh_keys_and_nonces(sealed: Path, key: rsa.RSAPrivateKey) -> None:
    model = unseal(sealed, RsaFileUnwrapper(key))
    assert dict(model.files) == {p.name: p.read_bytes() for p in PLAIN.iterdir()}
    header = parse_header((sealed / "header.json").read_bytes())
    assert header.key.encrypted_data_key != parse_header((VECTOR / "header.json").read_bytes()).key.encrypted_data_key
    assert len({f.nonce for f in header.files}) == 2


def test_a_single_file_seals_as_its_own_model(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    report = seal_model(PLAIN / "model.onnx", tmp_path / "one", RsaFileDataKeys(key.public_key()))
    assert report.model == "model.onnx"
    assert report.model_sha256 == hashlib.sha256((PLAIN / "model.onnx").read_bytes()).hexdigest()
    assert unseal(tmp_path / "one", RsaFileUnwrapper(key)).model_bytes == (PLAIN / "model.onnx").read_bytes()


def test_ciphertext_never_contains_the_plaintext(sealed: Path) -> None:
    stored = b"".join(p.read_bytes() for p in sealed.iterdir())
    assert (PLAIN / "config.json").read_bytes()[:16] not in stored


def _edit_header(directory: Path, edit: Any) -> None:
    path = directory / "header.json"
    path.write_bytes(edit(path.read_bytes()))


def test_a_changed_header_byte_fails_every_tag(sealed: Path, key: rsa.RSAPrivateKey) -> None:
    header = json.loads((sealed / "header.json").read_bytes())
    nonce = header["files"][0]["nonce"]
    _edit_header(
        sealed, lambda raw: raw.replace(nonce.encode(), nonce[:-1].encode() + (b"0" if nonce[-1] != "0" else b"1"))
    )
    assert refused(sealed, key) == "SEALED_TAMPERED"


def test_a_semantically_equal_reencoded_header_is_refused(sealed: Path, key: rsa.RSAPrivateKey) -> None:
    _edit_header(sealed, lambda raw: json.dumps(json.loads(raw), indent=1).encode())
    assert refused(sealed, key) == "SEALED_TAMPERED"  # the AAD binds the header bytes as stored


def test_a_changed_plaintext_digest_in_the_header_is_refused(sealed: Path, key: rsa.RSAPrivateKey) -> None:
    digest = json.loads((sealed / "header.json").read_bytes())["files"][1]["sha256"]
    _edit_header(sealed, lambda raw: raw.replace(digest.encode(), hashlib.sha256(b"other").hexdigest().encode()))
    assert refused(sealed, key) == "SEALED_TAMPERED"


def test_a_flipped_ciphertext_bit_is_refused(sealed: Path, key: rsa.RSAPrivateKey) -> None:
    blob = bytearray((sealed / "0001.sealed").read_bytes())
    blob[10] ^= 0x04
    (sealed / "0001.sealed").write_bytes(bytes(blob))
    assert refused(sealed, key) == "SEALED_TAMPERED"


def test_swapped_blobs_are_refused(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    source = tmp_path / "plain"
    source.mkdir()
    (source / "a.bin").write_bytes(b"A" * 64)
    (source / "model.onnx").write_bytes(b"B" * 64)
    seal_model(source, tmp_path / "s", RsaFileDataKeys(key.public_key()))
    first, second = (tmp_path / "s" / "0000.sealed").read_bytes(), (tmp_path / "s" / "0001.sealed").read_bytes()
    (tmp_path / "s" / "0000.sealed").write_bytes(second)
    (tmp_path / "s" / "0001.sealed").write_bytes(first)
    assert refused(tmp_path / "s", key) == "SEALED_TAMPERED"


def test_a_truncated_or_missing_blob_is_refused(sealed: Path, key: rsa.RSAPrivateKey) -> None:
    (sealed / "0000.sealed").write_bytes((sealed / "0000.sealed").read_bytes()[:-1])
    assert refused(sealed, key) == "SEALED_FILE_SIZE"
    (sealed / "0000.sealed").unlink()
    assert refused(sealed, key) == "SEALED_FILE_MISSING"


def test_a_digest_the_sealer_got_wrong_is_refused_after_decryption(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    """A header whose digest does not match its (correctly encrypted) content, built by hand from §2-4."""
    import base64
    import os

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    data_key, nonce, content = os.urandom(32), os.urandom(12), b"model bytes"
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = {
        "format": "trustdial-sealed-model/1", "cipher": "AES-256-GCM", "model": "m.onnx",
        "key": {"scheme": "rsa-oaep-sha256", "key_id": "sha256:" + hashlib.sha256(spki).hexdigest(),
                "encrypted_data_key": base64.b64encode(key.public_key().encrypt(data_key, oaep)).decode(),
                "encryption_context": {}},
        "files": [{"name": "m.onnx", "size": len(content), "sha256": hashlib.sha256(b"not it").hexdigest(),
                   "nonce": nonce.hex()}],
    }  # fmt: skip
    raw = json.dumps(header).encode()
    aad = b"trustdial-sealed-model/1\x00" + hashlib.sha256(raw).digest() + (0).to_bytes(4, "big") + b"m.onnx"
    directory = tmp_path / "wrong-digest"
    directory.mkdir()
    (directory / "header.json").write_bytes(raw)
    (directory / "0000.sealed").write_bytes(AESGCM(data_key).encrypt(nonce, content, aad))
    assert refused(directory, key) == "SEALED_DIGEST_MISMATCH"


def test_another_rsa_key_is_refused(sealed: Path) -> None:
    assert refused(sealed, rsa.generate_private_key(public_exponent=65537, key_size=2048)) == "SEALED_KEY_MISMATCH"


def _header(**changes: Any) -> dict[str, Any]:
    header: dict[str, Any] = json.loads((VECTOR / "header.json").read_bytes())
    header.update(changes)
    return header


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"format":"trustdial-sealed-model/1","format":"x"}', "SEALED_HEADER_INVALID"),
        (json.dumps(_header(extra=1)).encode(), "SEALED_HEADER_INVALID"),
        (json.dumps({k: v for k, v in _header().items() if k != "model"}).encode(), "SEALED_HEADER_INVALID"),
        (json.dumps(_header(format="trustdial-sealed-model/2")).encode(), "SEALED_FORMAT_UNSUPPORTED"),
        (json.dumps(_header(cipher="AES-128-GCM")).encode(), "SEALED_FORMAT_UNSUPPORTED"),
        (json.dumps(_header(model="missing.onnx")).encode(), "SEALED_HEADER_INVALID"),
        (json.dumps(_header(model="../model.onnx")).encode(), "SEALED_HEADER_INVALID"),
        (b"\xff\xfe", "SEALED_HEADER_INVALID"),
        (b"[]", "SEALED_HEADER_INVALID"),
        (json.dumps(_header()).replace('"size": 46', '"size": NaN').encode(), "SEALED_HEADER_INVALID"),
        (json.dumps(_header()).replace('"size": 46', '"size": 46.0').encode(), "SEALED_HEADER_INVALID"),
        (json.dumps(_header()).replace('"a0a0a0a0', '"A0A0A0A0').encode(), "SEALED_HEADER_INVALID"),
        (
            json.dumps(_header()).replace("a1a1a1a1a1a1a1a1a1a1a1a1", "a0a0a0a0a0a0a0a0a0a0a0a0").encode(),
            "SEALED_HEADER_INVALID",
        ),
        (json.dumps(_header()).replace('"config.json"', '"/etc/passwd"').encode(), "SEALED_HEADER_INVALID"),
        (json.dumps(_header()).replace('"config.json"', '"a//b"').encode(), "SEALED_HEADER_INVALID"),
        (json.dumps(_header()).replace('"config.json"', '"model.onnx"').encode(), "SEALED_HEADER_INVALID"),
        (json.dumps(_header()).replace('"rsa-oaep-sha256"', '"plaintext"').encode(), "SEALED_HEADER_INVALID"),
        (b" " * (1024 * 1024 + 1), "SEALED_HEADER_INVALID"),
    ],
    ids=[
        "duplicate-key",
        "unknown-key",
        "missing-key",
        "future-format",
        "other-cipher",
        "model-not-listed",
        "model-traversal",
        "not-utf8",
        "not-an-object",
        "nan",
        "float-size",
        "uppercase-hex",
        "repeated-nonce",
        "absolute-name",
        "empty-path-part",
        "duplicate-name",
        "unknown-scheme",
        "oversized",
    ],
)
def test_the_header_is_parsed_strictly(raw: bytes, code: str) -> None:
    with pytest.raises(SealedModelError) as caught:
        parse_header(raw)
    assert caught.value.code == code


def _serve_args(*extra: str) -> Any:
    words = ["serve", "--listen", "tcp:127.0.0.1:0", *extra]
    return build_parser(words).parse_args(words)


def test_nothing_is_loaded_when_any_sealed_model_is_refused(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    from enclave_app.nsm.simulated import SimulatedNsm

    good, bad = tmp_path / "good", tmp_path / "bad"
    seal_model(PLAIN, good, RsaFileDataKeys(key.public_key()))
    shutil.copytree(good, bad)
    (bad / "0000.sealed").write_bytes(b"\x00" + (bad / "0000.sealed").read_bytes()[1:])
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    loaded: list[str] = []

    def loader(raw: bytes, name: str, path: Path, **_: Any) -> Any:
        loaded.append(name)
        return name

    args = _serve_args("--sealed-model", f"a={good}", "--sealed-model", f"b={bad}", "--sealed-key-file", str(key_file))
    with pytest.raises(SealedModelError) as caught:
        load_sealed_models(args, SimulatedNsm(), loader=loader)
    assert caught.value.code == "SEALED_TAMPERED"
    assert loaded == []  # the good model was not loaded either
    args = _serve_args("--sealed-model", f"a={good}", "--sealed-key-file", str(key_file))
    assert load_sealed_models(args, SimulatedNsm(), loader=loader) == ["a"]


def test_a_kms_sealed_model_without_kms_options_is_refused(tmp_path: Path) -> None:
    from enclave_app.nsm.simulated import SimulatedNsm

    shutil.copytree(VECTOR, tmp_path / "s")
    header = _header()
    header["key"]["scheme"] = "aws-kms"
    (tmp_path / "s" / "header.json").write_text(json.dumps(header))
    with pytest.raises(SealedModelError) as caught:
        load_sealed_models(_serve_args("--sealed-model", f"m={tmp_path / 's'}"), SimulatedNsm())
    assert caught.value.code == "SEALED_KMS_OPTIONS"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_any_json_document_is_a_header_or_a_typed_refusal(value: object) -> None:
    try:
        parse_header(json.dumps(value).encode())
    except SealedModelError as err:
        assert err.code in ("SEALED_HEADER_INVALID", "SEALED_FORMAT_UNSUPPORTED")


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=889), st.integers(min_value=1, max_value=255))
def test_any_byte_change_of_the_vector_header_is_refused(position: int, flip: int) -> None:
    raw = bytearray((VECTOR / "header.json").read_bytes())
    raw[position] ^= flip
    with pytest.raises(SealedModelError):
        _unseal_with_header(bytes(raw))


def _unseal_with_header(raw: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        shutil.copytree(VECTOR, Path(work) / "v")
        (Path(work) / "v" / "header.json").write_bytes(raw)
        unseal(Path(work) / "v", RsaFileUnwrapper(VECTOR_KEY))
