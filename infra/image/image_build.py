"""The Docker-free enclave image build: Debian rootfs (mmdebstrap, package lock) + runtime-lock
wheels + application layer, assembled into an OCI archive with the configuration that
Dockerfile.enclave declares. ``trustdial eif image --image`` turns the archive into the EIF.

Every output lands in one build directory; the downloaded .debs and wheels live in a cache that
several builds may share (each file is checked against its lock's sha256 on every use). The
summary (``build.json``) records what went into PCR2: the Debian lock's sha256, the runtime
lock's sha256, the sha256 of every layer and of the archive, and what the image's command serves
(``models``: each model file's sha256 and each LLM bundle's digest, by served name)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from infra.image.app_layer import build_app_layer
from infra.image.atomic_output import atomic_output
from infra.image.debian_lock import DebianLock, fetch_locked, write_flat_repository
from infra.image.dockerfile_spec import DockerfileSpec, parse_dockerfile
from infra.image.errors import BuildError
from infra.image.oci_archive import OciImage, write_oci_archive
from infra.image.python_layer import build_python_layer
from infra.image.rootfs import build_rootfs
from infra.image.served_models import manifest_models, served_models

# Docker's default PATH, which `docker run` supplies when an image sets none: the Docker route's base image
# sets its own, here the image must carry one for the enclave's init to find `python`.
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageBuild:
    output_dir: str
    debian_lock_sha256: str
    runtime_lock_sha256: str
    rootfs_sha256: str
    python_layer_sha256: str
    app_layer_sha256: str
    oci_archive_sha256: str
    image_config_digest: str
    source_date_epoch: int
    rootfs_seconds: float
    total_seconds: float
    #: what the CMD serves, as the measurement manifest's ``models`` map: {name: {"sha256": hex}}
    models: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def oci_archive(self) -> Path:
        return Path(self.output_dir) / "image.oci.tar"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def created_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_image(
    *,
    lock: DebianLock,
    runtime_lock: Path,
    dockerfile: Path,
    context: Path,
    model: Path,
    llm: Path,
    output_dir: Path,
    cache: Path,
    source_date_epoch: int,
    mirror: dict[str, str] | None = None,
) -> ImageBuild:
    started = time.monotonic()
    output_dir, cache = output_dir.resolve(), cache.resolve()  # mmdebstrap's copy:// source must be absolute
    if not model.is_file():
        raise BuildError("EIF_BUILD_INPUT", f"model {model} does not exist (make model builds the reference model)")
    if not runtime_lock.is_file():
        raise BuildError("EIF_BUILD_INPUT", f"runtime lock {runtime_lock} does not exist")
    if not llm.is_dir():
        raise BuildError("EIF_BUILD_INPUT", f"LLM bundle {llm} is not a directory (trustdial llm build makes one)")
    spec = parse_dockerfile(dockerfile, {"MODEL": str(model.resolve()), "LLM": str(llm.resolve())})
    served = served_models(spec, context)  # refuses a bundle that does not match its bundle.json
    output_dir.mkdir(parents=True, exist_ok=True)
    work = output_dir / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    try:
        debs = fetch_locked(lock, cache / "debs", mirror=mirror)
        repository = write_flat_repository(lock, debs, work / "repository")
        rootfs = output_dir / "rootfs.tar"
        rootfs_seconds = build_rootfs(lock, repository, rootfs, source_date_epoch=source_date_epoch, workdir=work)
        python_layer = output_dir / "python.tar"
        build_python_layer(runtime_lock, cache / "wheels", python_layer, workdir=work, mtime=source_date_epoch)
        app_layer = output_dir / "app.tar"
        image = assemble_image(
            lock=lock, runtime_lock=runtime_lock, rootfs=rootfs, python_layer=python_layer, spec=spec,
            context=context, app_layer=app_layer, archive=output_dir / "image.oci.tar",
            source_date_epoch=source_date_epoch,
        )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = ImageBuild(
        output_dir=str(output_dir),
        debian_lock_sha256=lock.sha256,
        runtime_lock_sha256=file_sha256(runtime_lock),
        rootfs_sha256=file_sha256(rootfs),
        python_layer_sha256=file_sha256(python_layer),
        app_layer_sha256=file_sha256(app_layer),
        oci_archive_sha256=file_sha256(output_dir / "image.oci.tar"),
        image_config_digest=image.config_digest,
        source_date_epoch=source_date_epoch,
        rootfs_seconds=round(rootfs_seconds, 1),
        total_seconds=round(time.monotonic() - started, 1),
        models=manifest_models(served),
    )
    with atomic_output(output_dir / "build.json") as out:
        out.write((json.dumps(asdict(result), indent=2, sort_keys=True) + "\n").encode())
    return result


def assemble_image(
    *,
    lock: DebianLock,
    runtime_lock: Path,
    rootfs: Path,
    python_layer: Path,
    spec: DockerfileSpec,
    context: Path,
    app_layer: Path,
    archive: Path,
    source_date_epoch: int,
) -> OciImage:
    """The app layer (the COPY lines' files) over the rootfs and wheel layers, as the OCI archive ``archive``. The
    last step of ``build_image``; the rootfs and wheel layers do not depend on the app's files."""
    build_app_layer(spec, context, app_layer, mtime=source_date_epoch)
    sys.stderr.write("image: writing the OCI archive...\n")
    return write_oci_archive(
        archive,
        layers=[
            (rootfs, f"mmdebstrap --variant={lock.variant} (Debian lock sha256 {lock.sha256})"),
            (python_layer, f"runtime lock wheels (sha256 {file_sha256(runtime_lock)})"),
            (app_layer, "COPY of Dockerfile.enclave's /app files"),
        ],
        cmd=spec.cmd,
        env=[DEFAULT_PATH, *spec.env],
        workdir=spec.workdir,
        created=created_time(source_date_epoch),
        mtime=source_date_epoch,
    )


def load_build_summary(path: Path) -> dict[str, object]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BuildError("EIF_BUILD_INPUT", f"image build summary {path}: {err}") from err
    if not isinstance(document, dict):
        raise BuildError("EIF_BUILD_INPUT", f"image build summary {path} is not a JSON object")
    return document
