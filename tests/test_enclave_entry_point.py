"""The enclave image's own command starts with nothing but what the image holds.

The image (Dockerfile.enclave; the Docker-free build copies the same files) carries the runtime lock's wheels and
the packages its COPY lines name. These tests read that file itself — its ENV, COPY, WORKDIR and CMD — and run
the CMD's module in a fresh venv holding only the locked wheels, with only the copied files on PYTHONPATH, from
a directory outside the repository. Only the flags that pick the transport and the NSM differ (tcp and the
simulated NSM instead of vsock and /dev/nsm). Before the enclave got its own entry point the CMD was
``python -m trustdial.cli serve ...``, which died here with ``ModuleNotFoundError: No module named 'infra'``.

The image serves a language-model bundle too (``--llm /app/llm/bundle``; the build passes ``LLM``, here the tiny
test bundle): the same command, from the same venv, answers a chat completion that the real ``openai`` client
(strict response validation) receives through ``trustdial-verify proxy`` as verified, and whose receipt
``trustdial-verify chat`` checks offline against the bundle digest recorded in tests/data/llm/PROVENANCE.md."""

from __future__ import annotations

import base64
import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from cryptography import x509
from openai.types.chat import ChatCompletionMessageParam
from serve_gateway import start_process, stop_process
from trustdial_verifier._internal.client import Client, ExpectedEnclave
from trustdial_verifier._internal.llm.bundle import read_manifest
from trustdial_verifier._internal.tensors import Tensor

from enclave_app.reference_models import build_mlp
from trustdial import cli

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile.enclave"
LOCK = ROOT / "infra" / "image" / "enclave" / "requirements.lock"
BIN = Path(sys.executable).parent
ROLE_PACKAGES = ("infra", "prover", "trustdial", "aws_cdk", "cdk_nag", "ezkl", "onnx", "boto3", "fastapi")
TINY = ROOT / "tests" / "data" / "llm" / "tiny"
#: the tiny bundle's digest as its maker recorded it (tests/data/llm/PROVENANCE.md)
TINY_DIGEST = "9017a85ee937e822014c434849cf9a1b130a6f18dfd4dbe18bb602956cdda688"
#: the build arguments this test builds the image with (make eif passes MODEL and LLM the same way)
BUILD_ARGS = {"LLM": str(TINY)}


@dataclass
class ImageSpec:
    """What Dockerfile.enclave says the image is: env, files copied (source → destination), workdir, command."""

    env: dict[str, str] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[str, str]] = field(default_factory=list)
    workdir: str = "/"
    cmd: list[str] = field(default_factory=list)


def read_dockerfile(path: Path, build_args: dict[str, str] | None = None) -> ImageSpec:
    spec = ImageSpec()
    text = re.sub(r"\\\n", " ", path.read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        words = [word for word in shlex.split(rest) if not word.startswith("--chmod")]
        if instruction == "ARG" and "=" in rest:
            name, _, value = rest.strip().partition("=")
            spec.args[name] = (build_args or {}).get(name, value)
        elif instruction == "ENV":
            spec.env.update(word.split("=", 1) for word in words)  # type: ignore[misc]
        elif instruction == "COPY":
            source = re.sub(r"\$\{(\w+)\}", lambda m: spec.args[m.group(1)], words[0])
            spec.copies.append((source, words[1]))
        elif instruction == "WORKDIR":
            spec.workdir = words[0]
        elif instruction == "CMD":
            spec.cmd = json.loads(rest)
    return spec


@pytest.fixture(scope="session")
def image_spec() -> ImageSpec:
    return read_dockerfile(DOCKERFILE, BUILD_ARGS)


@pytest.fixture(scope="session")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with only the runtime lock's wheels, installed as the image installs them."""
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [
            str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--no-deps", "--require-hashes", "--only-binary=:all:", "-r", str(LOCK),
        ],
        check=True, timeout=600, env={**os.environ, "PIP_CONSTRAINT": ""},
    )  # fmt: skip
    return venv


@pytest.fixture(scope="session")
def image_root(image_spec: ImageSpec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory laid out as the image's filesystem: the COPY lines' files, with the model the build passes."""
    root = tmp_path_factory.mktemp("image-root")
    for source, destination in image_spec.copies:
        target = root / destination.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.endswith(".onnx"):  # the model is a build argument, not a file of the repository
            target.write_bytes(build_mlp((4, 8, 2), seed=7))
        elif (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / source, target)
    return root


def image_command(spec: ImageSpec, root: Path, venv: Path, flags: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The image's CMD with paths under ``root``, the venv's python, and ``flags``' values replaced; its env."""
    assert spec.cmd[0] == "python", spec.cmd
    command = [str(venv / "bin" / "python"), *(re.sub(r"^/app", str(root / "app"), word) for word in spec.cmd[1:])]
    for flag, value in flags.items():
        command[command.index(flag) + 1] = value
    env = {key: re.sub(r"/app", str(root / "app"), value) for key, value in spec.env.items()}
    return command, {"PATH": "/usr/bin:/bin", **env}


def test_the_image_runs_the_enclave_module_with_the_production_flags(image_spec: ImageSpec) -> None:
    assert image_spec.cmd[:4] == ["python", "-m", "enclave_app", "serve"]
    flags = dict(zip(image_spec.cmd[4::2], image_spec.cmd[5::2], strict=True))
    assert (flags["--listen"], flags["--nsm"]) == ("vsock:5000", "device")
    # the LLM bundle is the build's LLM argument, copied whole to the path the command serves
    assert flags["--llm"] == "/app/llm/bundle"
    assert (BUILD_ARGS["LLM"], "/app/llm/bundle") in image_spec.copies
    assert read_dockerfile(DOCKERFILE).args["LLM"] == ".cache/llm/smollm2-int4"  # make eif's default (docs/eif.md)


def test_the_image_copies_no_operator_package(image_spec: ImageSpec) -> None:
    copied = {destination.rstrip("/").rsplit("/", 1)[-1] for _, destination in image_spec.copies}
    assert copied.isdisjoint({"trustdial", "infra", "prover"}), copied


def test_the_runtime_lock_holds_no_other_role(runtime_venv: Path) -> None:
    done = subprocess.run(
        [str(runtime_venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    installed = {item["name"].lower() for item in json.loads(done.stdout)}
    assert {"onnxruntime", "onnxruntime-genai", "numpy", "cbor2", "cryptography"} <= installed
    assert installed.isdisjoint({"boto3", "ezkl", "onnx", "aws-cdk-lib", "fastapi", "uvicorn", "httpx"}), installed


@pytest.fixture
def image_server(
    image_spec: ImageSpec, image_root: Path, runtime_venv: Path, tmp_path: Path
) -> Iterator[tuple[dict[str, object], Path, Path]]:
    pcrs = tmp_path / "pcrs.json"
    pcrs.write_text(json.dumps({"0": "11" * 48, "1": "22" * 48, "2": "33" * 48}))
    root_pem = tmp_path / "root.pem"
    command, env = image_command(
        image_spec, image_root, runtime_venv, {"--listen": "tcp:127.0.0.1:0", "--nsm": "simulated"}
    )
    command += ["--simulated-pcrs-from", str(pcrs), "--simulated-root-out", str(root_pem)]
    workdir = image_root / image_spec.workdir.lstrip("/")
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            pytest.fail(f"the image's command did not start: {process.wait(timeout=30)}: {process.stderr.read()}")  # type: ignore[union-attr]
        yield json.loads(line), pcrs, root_pem
    finally:
        stop_process(process)


def test_the_image_command_serves_a_verified_inference(image_server: tuple[dict[str, object], Path, Path]) -> None:
    ready, pcrs, root_pem = image_server
    assert ready["event"] == "listening"
    models = ready["models"]
    assert isinstance(models, dict) and set(models) == {"model"}
    gateway, gateway_ready = start_process(
        [BIN / "trustdial", "gateway", "--enclave", str(ready["address"]), "--listen", "127.0.0.1:0"]
    )
    try:
        expected = ExpectedEnclave(
            pcrs={int(k): bytes.fromhex(v) for k, v in json.loads(pcrs.read_text()).items()},
            models={"model": bytes.fromhex(models["model"])},
            root=x509.load_pem_x509_certificate(root_pem.read_bytes()),
        )
        with Client(gateway_ready["url"], expected) as client:
            result = client.infer("model", {"x": Tensor.from_array(np.ones((1, 4), dtype=np.float32))})
    finally:
        stop_process(gateway)
    assert result.statement.model == bytes.fromhex(models["model"])
    assert set(result.outputs) == {"y"}


def test_the_image_command_serves_a_verified_chat_completion(
    image_server: tuple[dict[str, object], Path, Path], tmp_path: Path
) -> None:
    ready, pcrs, root_pem = image_server
    digest = read_manifest(TINY).digest().hex()
    assert digest == TINY_DIGEST
    assert ready["llm"] == {"tiny": TINY_DIGEST}  # served under the bundle's own name, loaded from /app/llm/bundle
    gateway, gateway_ready = start_process(
        [BIN / "trustdial", "gateway", "--enclave", str(ready["address"]), "--listen", "127.0.0.1:0"]
    )
    proxy = None
    try:
        url = gateway_ready["url"]
        proxy, proxy_ready = start_process(
            [BIN / "trustdial-verify", "proxy", "--upstream", url, "--pcrs", pcrs, "--model", f"tiny={TINY_DIGEST}",
             "--root", root_pem]
        )  # fmt: skip
        app = openai.OpenAI(base_url=proxy_ready["url"] + "/v1", api_key="unused", max_retries=0, timeout=120,
                            _strict_response_validation=True)  # fmt: skip
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the capital of France?"}]
        plain = app.chat.completions.create(model="tiny", messages=messages, max_tokens=8, temperature=0)
        assert plain.model_extra is not None and plain.model_extra["trustdial_verified"] is True
        assert plain.usage is not None and 1 <= plain.usage.completion_tokens <= 8
        stream = app.chat.completions.create(model="tiny", messages=messages, max_tokens=8, temperature=0,
                                             stream=True, stream_options={"include_usage": True})  # fmt: skip
        chunks = list(stream)
        assert all(chunk.model_extra is not None and chunk.model_extra["trustdial_verified"] for chunk in chunks)
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed == plain.choices[0].message.content  # greedy: the same completion, chunk by chunk

        # offline, as a third party: the receipt of a plain answer against the bundle digest and the PCRs
        body = {"model": "tiny", "messages": messages, "max_tokens": 8, "temperature": 0}
        answer = httpx.post(url + "/v1/chat/completions", json=body, timeout=120)
        assert answer.status_code == 200, answer.text
        binding = httpx.get(url + "/v1/attestation", params={"nonce": "01"}, timeout=60).json()["binding"]
        (tmp_path / "binding.cose").write_bytes(base64.b64decode(binding))
        (tmp_path / "response.json").write_bytes(answer.content)
        (tmp_path / "request.json").write_text(json.dumps(body))
        done = subprocess.run(
            [str(BIN / "trustdial-verify"), "chat", str(tmp_path / "response.json"),
             "--request", str(tmp_path / "request.json"), "--attestation", str(tmp_path / "binding.cose"),
             "--pcrs", str(pcrs), "--bundle-digest", TINY_DIGEST, "--root", str(root_pem), "--json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["bundle_digest"] == TINY_DIGEST
    finally:
        if proxy is not None:
            stop_process(proxy)
        stop_process(gateway)


def test_the_enclave_module_imports_no_other_role(image_root: Path, runtime_venv: Path) -> None:
    probe = "import sys, enclave_app.__main__; print(sorted({m.split('.')[0] for m in sys.modules}))"
    done = subprocess.run(
        [str(runtime_venv / "bin" / "python"), "-c", probe],
        cwd=image_root, env={"PYTHONPATH": f"{image_root}/app:{image_root}/app/verifier/src"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout.replace("'", '"'))).isdisjoint(ROLE_PACKAGES)


# --- the operator's CLI imports only the command it runs ---


def test_each_registry_help_line_is_the_modules_own() -> None:
    for command in cli.COMMANDS:
        parser = cli.build_parser([command.name])
        subparsers = next(a for a in parser._actions if a.dest == "command")
        helps = {choice.dest: choice.help for choice in subparsers._choices_actions}  # type: ignore[attr-defined]
        assert helps[command.name] == command.help, command.name
        importlib.import_module(command.module)


@pytest.mark.parametrize(
    ("words", "absent"),
    [
        (["--help"], ("infra", "prover", "enclave_app", "aws_cdk", "ezkl", "onnx", "onnxruntime", "boto3", "fastapi")),
        (["gateway", "--help"], ("infra", "prover", "aws_cdk", "cdk_nag", "ezkl", "onnx", "boto3")),
    ],
)
def test_the_cli_imports_only_the_chosen_command(words: list[str], absent: tuple[str, ...]) -> None:
    probe = (
        "import sys, contextlib, io\nfrom trustdial import cli\n"
        f"with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()): cli.main({words!r})\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()).isdisjoint(absent), done.stdout
