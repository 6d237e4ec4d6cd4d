"""``trustdial eif image``: the whole ``nitro-cli build-enclave`` equivalent from a blobs
directory and an image archive, with fixed metadata so two builds are bit-identical."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from trustdial_verifier.unstable.eif import measure_eif

from infra.image.blobs import DEFAULT_BLOBS_DIR, load_blobs, os_and_kernel_version
from infra.image.command_output import guarded
from infra.image.eif_metadata import EifMetadata
from infra.image.eif_writer import write_eif
from infra.image.image_archive import build_customer_ramdisk_from_image
from infra.image.image_config import load_image_config
from infra.image.ramdisks import build_bootstrap_ramdisk

ARCH_OF_IMAGE = {"amd64": "x86_64", "arm64": "aarch64", "x86_64": "x86_64", "aarch64": "aarch64"}


def register_image(commands: Any) -> None:
    image = commands.add_parser("image", help="build a complete EIF from the AWS blobs and an image archive")
    image.add_argument("--blobs", type=Path, default=DEFAULT_BLOBS_DIR, help=f"default {DEFAULT_BLOBS_DIR}")
    image.add_argument("--image", required=True, type=Path, help="docker save / OCI image archive")
    image.add_argument("--config", type=Path, help="override Cmd/Env with docker inspect / OCI config JSON")
    image.add_argument("--arch", choices=["x86_64", "aarch64"], help="default: the image's architecture")
    image.add_argument("--name", default="trustdial-enclave")
    image.add_argument("--version", default="1.0")
    image.add_argument("--build-time", default="1970-01-01T00:00:00+00:00")
    image.add_argument("--allow-unpinned-blobs", action="store_true", help="accept blobs of no pinned release")
    image.add_argument("--output", required=True, type=Path)
    image.add_argument("--json", action="store_true", help="print one JSON object")
    image.set_defaults(run=run_image)


def run_image(args: argparse.Namespace) -> int:
    def action() -> dict[str, Any]:
        workdir = Path(tempfile.mkdtemp(prefix="trustdial-eif-"))
        try:
            customer = workdir / "customer.cpio"
            sys.stderr.write("building customer ramdisk from image layers...\n")
            config = load_image_config(args.config) if args.config else None
            archive = build_customer_ramdisk_from_image(customer, image_tar=args.image, config=config)
            image_arch = archive.config.get("architecture")
            arch = args.arch or ARCH_OF_IMAGE.get(str(image_arch), "x86_64")
            blobs = load_blobs(args.blobs, arch, allow_unpinned=args.allow_unpinned_blobs)
            bootstrap = workdir / "bootstrap.cpio"
            build_bootstrap_ramdisk(bootstrap, init=blobs.init, nsm=blobs.nsm)
            os_name, kernel_version = os_and_kernel_version(blobs.kernel_config_line)
            metadata = EifMetadata(
                image_name=args.name,
                image_version=args.version,
                build_time=args.build_time,
                operating_system=os_name,
                kernel_version=kernel_version,
            )
            sys.stderr.write("writing EIF...\n")
            write_eif(
                args.output,
                kernel=blobs.kernel,
                cmdline=blobs.cmdline,
                ramdisks=[bootstrap, customer],
                arch=arch,
                metadata=metadata,
            )
            m = measure_eif(args.output)
            return {
                "output": str(args.output),
                **m.pcrs(),
                "sha256": m.sha256,
                "sha384": m.sha384,
                "arch": arch,
                "image_config_digest": archive.config_digest,
                "blobs_release": blobs.release,
                "blobs_sha256": blobs.sha256,
            }
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    return guarded(action, args.json)
