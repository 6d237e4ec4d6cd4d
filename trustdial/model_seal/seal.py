"""Seal a model file or bundle directory: hash every file, obtain a data key bound to the model's digest, write the
header, then encrypt each file with AES-256-GCM under its own nonce and AAD (docs/sealed-models.md §2-4)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from enclave_app.sealed.errors import SealedModelError
from enclave_app.sealed.header import (
    CONTEXT_MODEL_KEY,
    HEADER_NAME,
    MAX_FILES,
    NONCE_BYTES,
    SealedFile,
    SealedHeader,
    blob_name,
    check_name,
    encode_header,
    file_aad,
    header_digest,
)
from trustdial.model_seal.data_keys import DataKeySource

CHUNK = 1 << 20


@dataclass(frozen=True)
class SealReport:
    output: Path
    model: str
    model_sha256: str
    key_id: str
    files: tuple[SealedFile, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "output": str(self.output),
            "model": self.model,
            "model_sha256": self.model_sha256,
            "key_id": self.key_id,
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256.hex()} for f in self.files],
        }


def _source_files(source: Path) -> dict[str, Path]:
    if source.is_symlink():
        raise SealedModelError("SEAL_SOURCE", f"{source} is a symbolic link; seal the file it points to")
    if source.is_file():
        return {check_name(source.name): source}
    if not source.is_dir():
        raise SealedModelError("SEAL_SOURCE", f"{source} is neither a file nor a directory")
    files: dict[str, Path] = {}
    for path in sorted(source.rglob("*")):
        if path.is_symlink():
            raise SealedModelError("SEAL_SOURCE", f"{path} is a symbolic link; bundles hold regular files only")
        if path.is_file():
            files[check_name(path.relative_to(source).as_posix())] = path
    if not files or len(files) > MAX_FILES:
        raise SealedModelError("SEAL_SOURCE", f"expected 1 to {MAX_FILES} files under {source}, found {len(files)}")
    return files


def _digest(path: Path) -> tuple[int, bytes]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.digest()


def _choose_model(names: list[str], model_file: str | None) -> str:
    if model_file is not None:
        if model_file not in names:
            raise SealedModelError("SEAL_MODEL_FILE", f"--model-file {model_file!r} is not among {names}")
        return model_file
    onnx = [name for name in names if name.endswith(".onnx")]
    if len(onnx) != 1:
        raise SealedModelError(
            "SEAL_MODEL_FILE", f"expected exactly one .onnx file to serve, found {onnx}; name it with --model-file"
        )
    return onnx[0]


def _encrypt_file(source: Path, target: Path, key: bytes, entry: SealedFile, aad: bytes) -> None:
    encryptor = Cipher(algorithms.AES(key), modes.GCM(entry.nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as reader, target.open("xb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            writer.write(encryptor.update(chunk))
        writer.write(encryptor.finalize() + encryptor.tag)
    if size != entry.size or digest.digest() != entry.sha256:
        raise SealedModelError("SEAL_SOURCE_CHANGED", f"{source} changed while it was being sealed")


def seal_model(
    source: Path,
    output: Path,
    data_keys: DataKeySource,
    *,
    model_file: str | None = None,
    random: Callable[[int], bytes] = os.urandom,
    progress: Callable[[str], None] | None = None,
) -> SealReport:
    """Write the sealed form of ``source`` to the new directory ``output`` (created atomically)."""
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise SealedModelError("SEAL_OUTPUT_EXISTS", f"{output} exists and is not an empty directory")
    files = _source_files(source)
    model = _choose_model(list(files), model_file)
    nonces: set[bytes] = set()
    entries = []
    for name, path in files.items():
        size, digest = _digest(path)
        nonce = random(NONCE_BYTES)
        while nonce in nonces:  # never repeat a nonce under one key
            nonce = random(NONCE_BYTES)
        nonces.add(nonce)
        entries.append(SealedFile(name=name, size=size, sha256=digest, nonce=nonce))
    model_sha256 = next(e.sha256 for e in entries if e.name == model).hex()
    data_key, wrapped = data_keys.new_data_key({CONTEXT_MODEL_KEY: model_sha256})
    header = SealedHeader(model=model, key=wrapped, files=tuple(entries))
    raw = encode_header(header)
    digest = header_digest(raw)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        (staging / HEADER_NAME).write_bytes(raw)
        for index, entry in enumerate(entries):
            if progress is not None:
                progress(f"sealing {entry.name} ({entry.size} bytes)")
            _encrypt_file(
                files[entry.name], staging / blob_name(index), data_key, entry, file_aad(digest, index, entry.name)
            )
        if output.exists():
            output.rmdir()
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return SealReport(output, model, model_sha256, wrapped.key_id, tuple(entries))
