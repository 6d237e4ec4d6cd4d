"""A live enclave server plus gateway for the enclave tests: the reference models and PCRs chosen here, started
with the shared launcher (``tests/serve_gateway.py``)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from serve_gateway import start_serve_and_gateway, stop_process

from enclave_app.reference_models import build_cnn, build_mlp, build_tiny_lm, tiny_lm_weights

#: PCR values this test suite "publishes" for its simulated enclave (independent of the simulator's defaults).
PCRS = {index: hashlib.sha384(f"tests/enclave PCR{index}".encode()).digest() for index in (0, 1, 2, 8)}
MLP_DIMS = (16, 32, 4)


@dataclass(frozen=True)
class ModelFiles:
    directory: Path
    mlp: Path
    cnn: Path
    lm: Path

    def sha256(self, path: Path) -> bytes:
        return hashlib.sha256(path.read_bytes()).digest()


@dataclass
class LiveService:
    url: str
    enclave_address: str
    root: x509.Certificate
    pcrs: dict[int, bytes]
    models: dict[str, bytes]
    processes: list[subprocess.Popen[str]]

    def expected(self, **overrides: object) -> object:
        from trustdial_verifier._internal.client import ExpectedEnclave

        fields: dict[str, object] = {"pcrs": self.pcrs, "models": self.models, "root": self.root}
        fields.update(overrides)
        return ExpectedEnclave(**fields)  # type: ignore[arg-type]


def start_service(model_files: ModelFiles, workdir: Path, *extra: str, pcrs_from: Path | None = None) -> LiveService:
    pcrs_file = pcrs_from or workdir / "pcrs.json"
    if pcrs_from is None:
        pcrs_file.write_text(json.dumps({str(i): v.hex() for i, v in PCRS.items()}))
    started = start_serve_and_gateway(
        [model_files.mlp, model_files.cnn, model_files.lm], pcrs_file, workdir / "sim-root.pem",
        serve_args=["--stall-timeout", "2", *extra],
        gateway_args=["--max-body", str(256 * 1024), "--body-timeout", "2"],
    )  # fmt: skip
    try:
        root = x509.load_pem_x509_certificate(started.root_pem.read_bytes())
    except BaseException:
        started.stop()
        raise
    models = {"mlp": model_files.sha256(model_files.mlp), "cnn": model_files.sha256(model_files.cnn),
              "lm": model_files.sha256(model_files.lm)}  # fmt: skip
    return LiveService(started.url, started.enclave_address, root, dict(PCRS), models, started.processes)


def stop_service(service: LiveService) -> None:
    for process in reversed(service.processes):
        stop_process(process)


def write_models(directory: Path) -> ModelFiles:
    files = ModelFiles(directory, directory / "mlp.onnx", directory / "cnn.onnx", directory / "lm.onnx")
    files.mlp.write_bytes(build_mlp(MLP_DIMS, seed=1))
    files.cnn.write_bytes(build_cnn(seed=2))
    files.lm.write_bytes(build_tiny_lm(tiny_lm_weights(seed=3)))
    return files
