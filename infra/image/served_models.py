"""What the image's command serves, and the identity of each: the ``--model`` files (sha256 of the file) and the
``--llm`` bundles (the bundle digest, docs/llm-receipts.md §2) named by Dockerfile.enclave's CMD, found through the
COPY lines that place them under ``/app``, named exactly as ``serve`` names them.

The result is the measurement manifest's ``models`` map (``{name: {"sha256": hex}}``): the image build records it
in build.json, and ``trustdial measurements create --image-build`` copies it into the manifest, so a third party
pins the very files whose bytes are in PCR2. Each bundle is verified (every file against its bundle.json, no file
unlisted) before it goes into the image: a bundle the enclave would refuse at start is refused at build time."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from trustdial_verifier.unstable.llm import BundleError, verify_bundle

from infra.image.dockerfile_spec import DockerfileSpec
from infra.image.errors import BuildError


@dataclass(frozen=True)
class ServedModel:
    name: str
    kind: str  # "onnx" or "llm"
    image_path: str  # where the command reads it, in the image
    sha256: str  # file sha256 (onnx) or bundle digest (llm)


def _flag_values(cmd: tuple[str, ...], flag: str) -> list[str]:
    return [cmd[i + 1] for i, word in enumerate(cmd[:-1]) if word == flag]


def _source_of(spec: DockerfileSpec, context: Path, image_path: str) -> Path:
    """The build-context path that the COPY lines place at ``image_path`` (a COPY of it, or of a parent)."""
    target = PurePosixPath(image_path)
    for copy in spec.copies:
        destination = PurePosixPath(copy.destination)
        if target == destination or destination in target.parents:
            return (context / copy.source / target.relative_to(destination)).resolve()
    raise BuildError("EIF_BUILD_INPUT", f"the CMD serves {image_path}, which no COPY line places in the image")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def served_models(spec: DockerfileSpec, context: Path) -> list[ServedModel]:
    served: list[ServedModel] = []
    for value in _flag_values(spec.cmd, "--model"):
        name, _, path = value.rpartition("=")
        source = _source_of(spec, context, path)
        if not source.is_file():
            raise BuildError("EIF_BUILD_INPUT", f"model {source} (served as {path}) is not a file")
        served.append(ServedModel(name or PurePosixPath(path).stem, "onnx", path, _file_sha256(source)))
    for value in _flag_values(spec.cmd, "--llm"):
        name, _, path = value.rpartition("=")
        source = _source_of(spec, context, path)
        try:
            manifest = verify_bundle(source)
        except BundleError as err:
            raise BuildError("EIF_BUILD_INPUT", f"LLM bundle {source}: [{err.code}] {err.reason}") from err
        # serve's own rule (enclave_app.llm.service.load_llm): NAME=, else the bundle's meta name, else the directory
        served_name = name or manifest.meta.get("name") or PurePosixPath(path).name
        served.append(ServedModel(served_name, "llm", path, manifest.digest().hex()))
    names = [model.name for model in served]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise BuildError("EIF_BUILD_INPUT", f"the CMD serves two models under the name {duplicated[0]!r}")
    return served


def manifest_models(served: list[ServedModel]) -> dict[str, dict[str, str]]:
    """The measurement manifest's ``models`` entries for what the image serves."""
    return {model.name: {"sha256": model.sha256} for model in served}
