"""Regenerates the committed sealed-model test vector (docs/sealed-models.md §10). Run from the repository root:
``.venv/bin/python tests/data/sealed/make_vector.py``. Deterministic except the RSA-OAEP wrapping of the data key
(OAEP is randomized), so a rerun changes ``vector/header.json`` and therefore every blob: commit all of it together.

The data key is 00 01 .. 1f and the nonces are 12 bytes of 0xa0+i, chosen so a reader can check the AES-GCM layer
without the RSA key; ``key.pem`` is the (test-only) RSA-2048 key the data key is wrapped to."""

from __future__ import annotations

import shutil
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from enclave_app.reference_models import build_mlp
from trustdial.model_seal.data_keys import RsaFileDataKeys
from trustdial.model_seal.seal import seal_model

HERE = Path(__file__).resolve().parent


def main() -> None:
    source = HERE / "plain"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir()
    (source / "config.json").write_bytes(b'{"note":"trustdial sealed-model test vector"}\n')
    (source / "model.onnx").write_bytes(build_mlp((2, 3, 1), seed=7))
    key_path = HERE / "key.pem"
    if not key_path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        key_path.write_bytes(pem)
    private = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    nonces = iter(bytes([0xA0 + i]) * 12 for i in range(100))
    shutil.rmtree(HERE / "vector", ignore_errors=True)
    seal_model(
        source,
        HERE / "vector",
        RsaFileDataKeys(private.public_key(), random=lambda n: bytes(range(n))),
        random=lambda n: next(nonces)[:n],
    )


if __name__ == "__main__":
    main()
