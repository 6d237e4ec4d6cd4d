"""The application layer: exactly the files Dockerfile.enclave's COPY lines place under ``/app``
(the verifier package source, ``enclave_app``, the model), with their ``--chmod`` modes, tarred
deterministically (``__pycache__`` and ``.pyc`` left out)."""

from __future__ import annotations

from pathlib import Path

from infra.image.dockerfile_spec import DockerfileSpec
from infra.image.errors import BuildError
from infra.image.layer_tar import LayerFile, tree_files, write_layer


def app_files(spec: DockerfileSpec, context: Path) -> list[LayerFile]:
    files: list[LayerFile] = []
    for copy in spec.copies:
        source = (context / copy.source).resolve()
        if not source.exists():
            raise BuildError("EIF_BUILD_INPUT", f"COPY source {copy.source} does not exist (in {context})")
        files += tree_files(source, copy.destination, copy.mode)
    return files


def build_app_layer(spec: DockerfileSpec, context: Path, output: Path, *, mtime: int) -> None:
    write_layer(output, app_files(spec, context), mtime)
