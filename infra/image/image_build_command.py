"""``trustdial image lock|build|dev-blobs``: the Docker-free enclave image build (see docs/eif.md).

* ``lock``: resolve what Debian serves today into a package lock (``--kind rootfs`` for the
  enclave's root filesystem, ``--kind kernel`` for the dev/test kernel).
* ``build``: rootfs + wheels + app layer from the locks, assembled into an OCI archive for
  ``trustdial eif image``; ``build.json`` in the output directory records the digests.
* ``dev-blobs``: the clearly-labelled DEV/TEST stand-in for AWS's blobs (Debian kernel, test init).

Progress goes to stderr; ``--json`` prints one object on stdout."""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from infra.image.command_output import guarded
from infra.image.debian_lock import load_lock, resolve_lock
from infra.image.dev_blobs import KERNEL_INCLUDE, KERNEL_LOCK, KERNEL_PACKAGE, build_dev_blobs
from infra.image.errors import BuildError
from infra.image.image_build import build_image
from infra.image.rootfs import ROOTFS_INCLUDE

ROOT = Path(__file__).resolve().parents[2]
ROOTFS_LOCK = ROOT / "infra" / "image" / "enclave" / "debian.lock"
RUNTIME_LOCK = ROOT / "infra" / "image" / "enclave" / "requirements.lock"
HELP = "Docker-free enclave image build: Debian package locks, rootfs + wheels + app as an OCI archive"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("image", help=HELP)
    commands = parser.add_subparsers(dest="image_command", required=True, metavar="SUBCOMMAND")

    lock = commands.add_parser("lock", help="resolve today's Debian packages into a lock file")
    lock.add_argument("--kind", choices=["rootfs", "kernel"], default="rootfs")
    lock.add_argument("--output", type=Path, help=f"default: {ROOTFS_LOCK} / {KERNEL_LOCK}")
    lock.add_argument("--json", action="store_true")
    lock.set_defaults(run=run_lock)

    build = commands.add_parser("build", help="build rootfs, wheel and app layers and the OCI archive")
    build.add_argument("--debian-lock", type=Path, default=ROOTFS_LOCK)
    build.add_argument("--runtime-lock", type=Path, default=RUNTIME_LOCK)
    build.add_argument("--dockerfile", type=Path, default=ROOT / "Dockerfile.enclave")
    build.add_argument("--context", type=Path, default=ROOT)
    build.add_argument("--model", type=Path, default=ROOT / "models" / "model.onnx")
    build.add_argument(
        "--llm",
        type=Path,
        required=True,
        help="the LLM bundle directory (trustdial llm build) the image serves; Dockerfile.enclave's ARG LLM",
    )
    build.add_argument("--output-dir", type=Path, required=True)
    build.add_argument("--cache", type=Path, required=True, help="downloaded .debs and wheels (may be shared)")
    build.add_argument("--source-date-epoch", type=int, help="default: SOURCE_DATE_EPOCH, else the last commit time")
    build.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="SOURCE=URL",
        help="fetch the locked files of lock source SOURCE from URL instead (e.g. a snapshot.debian.org archive "
        "holding versions Debian has since replaced); the sha256 checks are the same; repeatable",
    )
    build.add_argument("--json", action="store_true")
    build.set_defaults(run=run_build)

    dev = commands.add_parser("dev-blobs", help="DEV/TEST stand-in for AWS's blobs (Debian kernel + test init)")
    dev.add_argument("--kernel-lock", type=Path, default=KERNEL_LOCK)
    dev.add_argument("--cache", type=Path, required=True)
    dev.add_argument("--output", type=Path, required=True)
    dev.add_argument("--json", action="store_true")
    dev.set_defaults(run=run_dev_blobs)


def run_lock(args: argparse.Namespace) -> int:
    def action() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="trustdial-lock-") as work:
            if args.kind == "rootfs":
                lock = resolve_lock(include=ROOTFS_INCLUDE, variant="essential", workdir=Path(work))
            else:
                lock = resolve_lock(include=KERNEL_INCLUDE, variant="none", keep=KERNEL_PACKAGE, workdir=Path(work))
        output = args.output or (ROOTFS_LOCK if args.kind == "rootfs" else KERNEL_LOCK)
        output.write_bytes(lock.to_bytes())
        return {"output": str(output), "sha256": lock.sha256, "packages": len(lock.packages)}

    return guarded(action, args.json)


def source_date_epoch(explicit: int | None) -> int:
    if explicit is not None:
        return explicit
    if os.environ.get("SOURCE_DATE_EPOCH"):
        try:
            return int(os.environ["SOURCE_DATE_EPOCH"])
        except ValueError as err:
            raise BuildError("EIF_BUILD_INPUT", "SOURCE_DATE_EPOCH is not a Unix timestamp") from err
    done = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        raise BuildError("EIF_BUILD_INPUT", "no --source-date-epoch, no SOURCE_DATE_EPOCH and no git commit time")
    return int(done.stdout.strip())


def run_build(args: argparse.Namespace) -> int:
    def action() -> dict[str, Any]:
        result = build_image(
            lock=load_lock(args.debian_lock),
            runtime_lock=args.runtime_lock,
            dockerfile=args.dockerfile,
            context=args.context,
            model=args.model,
            llm=args.llm,
            output_dir=args.output_dir,
            cache=args.cache,
            source_date_epoch=source_date_epoch(args.source_date_epoch),
            mirror=_mirrors(args.mirror),
        )
        return {**asdict(result), "oci_archive": str(result.oci_archive)}

    return guarded(action, args.json)


def _mirrors(specs: list[str]) -> dict[str, str]:
    mirrors = {}
    for spec in specs:
        source, sep, url = spec.partition("=")
        if not sep or not source.startswith("http") or not url.startswith(("http://", "https://")):
            raise BuildError("EIF_BUILD_INPUT", f"--mirror {spec!r} is not SOURCE_URI=MIRROR_URL")
        mirrors[source] = url
    return mirrors


def run_dev_blobs(args: argparse.Namespace) -> int:
    def action() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="trustdial-devblobs-") as work:
            out = build_dev_blobs(load_lock(args.kernel_lock), args.cache / "debs", args.output, workdir=Path(work))
        return {"output": str(out), "warning": "DEV/TEST blobs, not AWS's: PCR0/PCR1 are not production values"}

    return guarded(action, args.json)
