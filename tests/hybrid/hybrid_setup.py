"""Builds a published hybrid pipeline through the command line, as an operator would: the
reference model and pipeline.toml, split + zk compile (dev SRS), a development image and signed
manifest, and one run producing a composite receipt. Shared by the end-to-end tests."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from serve_gateway import ServeAndGateway, start_serve_and_gateway

BIN = Path(sys.executable).parent


def trustdial(*args: str | Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(BIN / "trustdial"), *map(str, args)], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def verify(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "trustdial-verify"), "receipt", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def input_file(path: Path, seed: int) -> Path:
    values = np.random.default_rng(seed).random((1, 784), dtype=np.float32)
    data = base64.b64encode(values.astype("<f4").tobytes()).decode()
    path.write_text(json.dumps({"input": {"dtype": "float32", "shape": [1, 784], "data": data}}))
    return path


#: the request nonce of the session's ``private_run`` (what its verifiers pass as ``--nonce``)
PRIVATE_RUN_NONCE = "5e" * 32


@dataclass(frozen=True)
class Published:
    root: Path
    pipeline: Path
    split: Path
    publication: Path

    @property
    def manifest(self) -> Path:
        return self.publication / "manifest.cose"

    @property
    def manifest_key(self) -> Path:
        return self.publication / "manifest-signing-dev.pub.pem"

    @property
    def zk_artifacts(self) -> Path:
        return self.split / "zk"

    def run(self, name: str, seed: int, nonce: str | None = None) -> tuple[Path, Path]:
        """One inference (request nonce ``nonce``, else a random one); returns (composite receipt,
        simulated NSM root PEM)."""
        receipt, root_pem = self.root / f"{name}.json", self.root / f"{name}.root.pem"
        given = input_file(self.root / f"{name}.in.json", seed)
        trustdial(
            "pipeline", "run", self.pipeline, "--split", self.split, "--input", given,
            "--local", "--measurements", self.manifest, "--output", receipt, "--root-out", root_pem,
            *(["--nonce", nonce] if nonce is not None else []),
        )  # fmt: skip
        return receipt, root_pem

    def verify_args(self, receipt: Path, root_pem: Path) -> list[str | Path]:
        return [
            receipt, "--measurements", self.manifest, "--manifest-key", self.manifest_key, "--policy", self.pipeline,
            "--zk-artifacts", self.zk_artifacts, "--root", root_pem, "--allow-dev-srs", "--json",
        ]  # fmt: skip


def publish(root: Path, boundary: str) -> Published:
    trustdial("pipeline", "reference", "--output", root / "ref", "--boundary", boundary)
    pipeline = root / "ref" / "pipeline.toml"
    split = root / "split"
    # zk segments are compiled with the prover's tuner (the default of --compile-zk)
    trustdial(
        "pipeline", "split", pipeline, "--output", split, "--samples", "2", "--compile-zk", "--dev-srs",
    )  # fmt: skip
    trustdial("pipeline", "publish-dev", pipeline, "--split", split, "--output", root / "pub")
    return Published(root=root, pipeline=pipeline, split=split, publication=root / "pub")


def start_gateway(published: Published, circuits: tuple[str, ...] = ()) -> ServeAndGateway:
    """`trustdial serve` (the body segment, plus the ``circuits`` segments executed with their
    compiled circuits for tee+zk steps; simulated NSM reporting the manifest's PCRs) and
    `trustdial gateway` on 127.0.0.1, as the enclave host would run them."""
    from trustdial_verifier._internal.measurements import parse_manifest, signed_payload

    manifest = parse_manifest(signed_payload(published.manifest.read_bytes()))
    index = {"PCR0": 0, "PCR1": 1, "PCR2": 2, "PCR8": 8}
    pcrs = published.root / "gateway-pcrs.json"
    pcrs.write_text(json.dumps({str(index[k]): v for k, v in manifest.pcrs.items() if v}))
    body = published.split / "segments" / "body.onnx"
    models = [f"body={body}", *[f"{name}={published.split / 'segments' / f'{name}.onnx'}" for name in circuits]]
    serve_args = [f"--circuit={name}={published.zk_artifacts / name}" for name in circuits]
    return start_serve_and_gateway(models, pcrs, published.root / "gateway-root.pem", serve_args=serve_args)


def republish(published: Published, name: str, modes: dict[str, str]) -> Published:
    """The same model and split under a policy that changes only segment modes (e.g. the head as
    ``tee+zk``): a new pipeline.toml next to the model and a new dev image + signed manifest that
    pin that policy; the compiled zk artifacts are reused."""
    import tomllib

    document = tomllib.loads(published.pipeline.read_text())
    text = published.pipeline.read_text()
    for segment in document["segments"]:
        if segment["name"] in modes:
            old = f'name = "{segment["name"]}"'
            head, _, tail = text.partition(old)
            tail = tail.replace(f'mode = "{segment["mode"]}"', f'mode = "{modes[segment["name"]]}"', 1)
            text = head + old + tail
    pipeline = published.pipeline.with_name(f"pipeline-{name}.toml")
    pipeline.write_text(text)
    assert tomllib.loads(text)["segments"] != document["segments"]
    trustdial(
        "pipeline", "publish-dev", pipeline, "--split", published.split, "--output", published.root / f"pub-{name}"
    )
    return Published(
        root=published.root, pipeline=pipeline, split=published.split, publication=published.root / f"pub-{name}"
    )
