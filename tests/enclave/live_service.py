"""A live enclave server plus gateway for tests: ``trustdial serve`` and ``trustdial gateway``
subprocesses, TCP on 127.0.0.1, simulated NSM with PCRs chosen here."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from enclave_app.reference_models import build_cnn, build_mlp, build_tiny_lm, tiny_lm_weights

BIN = Path(sys.executable).parent
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
        from verifier.client import ExpectedEnclave

        fields: dict[str, object] = {"pcrs": self.pcrs, "models": self.models, "root": self.root}
        fields.update(overrides)
        return ExpectedEnclave(**fields)  # type: ignore[arg-type]


def start_process(args: list[str]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=30)
        raise RuntimeError(f"{args[1]} did not start: {process.stderr.read() if process.stderr else ''}")
    return process, json.loads(line)


def start_service(model_files: ModelFiles, workdir: Path, *extra: str, pcrs_from: Path | None = None) -> LiveService:
    pcrs_file = pcrs_from or workdir / "pcrs.json"
    if pcrs_from is None:
        pcrs_file.write_text(json.dumps({str(i): v.hex() for i, v in PCRS.items()}))
    root_file = workdir / "sim-root.pem"
    server, ready = start_process(
        [
            str(BIN / "trustdial"), "serve",
            "--model", str(model_files.mlp), "--model", str(model_files.cnn), "--model", str(model_files.lm),
            "--listen", "tcp:127.0.0.1:0", "--nsm", "simulated",
            "--simulated-pcrs-from", str(pcrs_file), "--simulated-root-out", str(root_file),
            "--stall-timeout", "2", *extra,
        ]
    )  # fmt: skip
    try:
        gateway, gw_ready = start_process(
            [
                str(BIN / "trustdial"), "gateway", "--enclave", ready["address"], "--listen", "127.0.0.1:0",
                "--max-body", str(256 * 1024), "--body-timeout", "2",
            ]
        )  # fmt: skip
    except BaseException:
        server.terminate()
        raise
    models = {"mlp": model_files.sha256(model_files.mlp), "cnn": model_files.sha256(model_files.cnn),
              "lm": model_files.sha256(model_files.lm)}  # fmt: skip
    root = x509.load_pem_x509_certificate(root_file.read_bytes())
    return LiveService(gw_ready["url"], ready["address"], root, dict(PCRS), models, [server, gateway])


def stop_service(service: LiveService) -> None:
    for process in reversed(service.processes):
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def write_models(directory: Path) -> ModelFiles:
    files = ModelFiles(directory, directory / "mlp.onnx", directory / "cnn.onnx", directory / "lm.onnx")
    files.mlp.write_bytes(build_mlp(MLP_DIMS, seed=1))
    files.cnn.write_bytes(build_cnn(seed=2))
    files.lm.write_bytes(build_tiny_lm(tiny_lm_weights(seed=3)))
    return files
