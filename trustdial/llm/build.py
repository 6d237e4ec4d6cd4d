"""Turn a GGUF file or a Hugging Face directory into an onnxruntime-genai bundle with its manifest.

Needs the ``llm`` build dependencies (``make llm-deps``: torch CPU, transformers, gguf, onnx-ir), imported
only here. A GGUF file is dequantized through transformers into a plain float32 Llama checkpoint (its
``quantization_config`` dropped, since ``save_pretrained`` refuses to write one), then onnxruntime-genai's
model builder writes ``model.onnx`` (+ ``.data``), ``genai_config.json`` and the tokenizer files. The chat
template must end up in ``tokenizer_config.json``: the engine applies it in the enclave, and the receipt
binds the token ids it produced. Finally every file is hashed into ``bundle.json``
(trustdial_verifier._internal.llm.bundle).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from trustdial_verifier.unstable.llm import (
    MANIFEST_NAME,
    BundleManifest,
    build_manifest,
    file_sha256,
    write_manifest,
)

#: files of the builder's output that the engine does not read and that would only change the digest
BUILDER_NOISE = ("builder_config.json",)
#: seconds onnxruntime-genai's model builder may take (SmolLM2-135M int4: 75-90 s on 2 busy cores)
BUILDER_TIMEOUT = 1800.0


class Precision(StrEnum):
    INT4 = "int4"
    FP32 = "fp32"


class BuildError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class BuiltBundle:
    directory: Path
    manifest: BundleManifest

    @property
    def digest(self) -> bytes:
        return self.manifest.digest()


def _progress(message: str) -> None:
    print(f"trustdial llm build: {message}", file=sys.stderr, flush=True)


def gguf_to_hf(gguf: Path, out: Path, progress: Callable[[str], None] = _progress) -> None:
    """Dequantize a Llama-architecture GGUF into a float32 Hugging Face checkpoint with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    progress(f"dequantizing {gguf.name} through transformers")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, torch_dtype=torch.float32)
    if loaded.config.model_type != "llama":
        raise BuildError("BUILD_ARCHITECTURE", f"expected a llama GGUF, found {loaded.config.model_type!r}")
    settings = loaded.config.to_dict()
    settings.pop("quantization_config", None)
    config = LlamaConfig(**{k: v for k, v in settings.items() if k not in ("architectures", "model_type")})
    fresh = LlamaForCausalLM(config)
    fresh.load_state_dict(loaded.state_dict(), strict=False)
    fresh.eval()
    fresh.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))


def _chat_template(hf_dir: Path) -> str | None:
    config = hf_dir / "tokenizer_config.json"
    if config.exists():
        value = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
        if isinstance(value, str) and value:
            return value
    jinja = hf_dir / "chat_template.jinja"
    return jinja.read_text(encoding="utf-8") if jinja.exists() else None


def run_builder(hf_dir: Path, out: Path, precision: Precision, cache: Path) -> None:
    command = [
        sys.executable, "-m", "onnxruntime_genai.models.builder",
        "-i", str(hf_dir), "-o", str(out), "-p", precision.value, "-e", "cpu", "-c", str(cache),
    ]  # fmt: skip
    # The builder stamps the graph's producer_version with `git rev-parse HEAD` run near its own install: inside a
    # virtualenv in a git work tree that is the work tree's commit, so the bundle digest would change with every
    # commit of the project that builds it. With no repository to find, it stamps its package's own commit.
    env = {**os.environ, "GIT_DIR": str(cache / "no-repository"), "GIT_CEILING_DIRECTORIES": "/"}
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=BUILDER_TIMEOUT, env=env
        )
    except subprocess.TimeoutExpired as err:
        raise BuildError("BUILD_TIMEOUT", f"onnxruntime-genai's builder ran over {BUILDER_TIMEOUT:.0f} s") from err
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise BuildError("BUILD_FAILED", "onnxruntime-genai's builder failed: " + " | ".join(tail))


def _source_digest(source: Path) -> str:
    if source.is_file():
        return file_sha256(source)[1].hex()
    return build_manifest(source).digest().hex()


def build_bundle(
    source: Path,
    output: Path,
    precision: Precision = Precision.INT4,
    *,
    name: str | None = None,
    progress: Callable[[str], None] = _progress,
) -> BuiltBundle:
    """Build ``output`` from ``source`` (a ``.gguf`` file or a Hugging Face directory)."""
    if output.exists() and any(output.iterdir()):
        raise BuildError("BUILD_OUTPUT_EXISTS", f"{output} exists and is not empty")
    if not source.exists():
        raise BuildError("BUILD_SOURCE", f"{source} does not exist")
    import onnxruntime_genai

    with tempfile.TemporaryDirectory(prefix="trustdial-llm-build-") as tmp:
        work = Path(tmp)
        if source.is_file():
            if source.suffix != ".gguf":
                raise BuildError("BUILD_SOURCE", f"expected a .gguf file or a Hugging Face directory, found {source}")
            hf_dir = work / "hf"
            gguf_to_hf(source, hf_dir, progress)
        else:
            hf_dir = source
        template = _chat_template(hf_dir)
        if template is None:
            raise BuildError("BUILD_NO_CHAT_TEMPLATE", f"{source} has no chat template (tokenizer_config.json)")
        progress(f"running onnxruntime-genai {onnxruntime_genai.__version__}'s model builder ({precision.value})")
        built = work / "out"
        run_builder(hf_dir, built, precision, work / "cache")
        for noise in BUILDER_NOISE:
            (built / noise).unlink(missing_ok=True)
        config_path = built / "tokenizer_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
        if config.get("chat_template") != template:
            config["chat_template"] = template
            config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (built / "chat_template.jinja").unlink(missing_ok=True)  # one template, in tokenizer_config.json
        output.mkdir(parents=True, exist_ok=True)
        for item in sorted(built.iterdir()):
            shutil.move(str(item), output / item.name)
    meta = {
        "name": name or source.stem,
        "precision": precision.value,
        "engine": f"onnxruntime-genai {onnxruntime_genai.__version__}",
        "source": source.name,
        "source_sha256": _source_digest(source),
    }
    manifest = build_manifest(output, meta)
    write_manifest(output, manifest)
    progress(f"wrote {output / MANIFEST_NAME}: bundle digest {manifest.digest().hex()}")
    return BuiltBundle(output, manifest)
