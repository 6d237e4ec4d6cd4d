"""``trustdial eif build|ramdisk|image``: build ramdisks and EIFs reproducibly, print PCRs."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from trustdial_verifier.unstable.eif import measure_eif

from infra.image.command_output import guarded
from infra.image.eif_metadata import EPOCH_BUILD_TIME, EifMetadata
from infra.image.eif_signing import EifSigner
from infra.image.eif_writer import write_eif
from infra.image.errors import BuildError
from infra.image.image_archive import build_customer_ramdisk_from_image
from infra.image.image_command import register_image
from infra.image.image_config import load_image_config
from infra.image.ramdisks import build_bootstrap_ramdisk, build_customer_ramdisk


def _default_build_time() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return EPOCH_BUILD_TIME
    from datetime import UTC, datetime

    try:
        return datetime.fromtimestamp(int(epoch), tz=UTC).isoformat()
    except (ValueError, OverflowError, OSError) as err:
        raise BuildError("EIF_BUILD_METADATA", f"SOURCE_DATE_EPOCH={epoch!r} is not a Unix timestamp") from err


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("eif", help="build enclave image files and ramdisks reproducibly")
    commands = parser.add_subparsers(dest="eif_command", required=True, metavar="SUBCOMMAND")

    build = commands.add_parser("build", help="write an EIF from a kernel, cmdline and ramdisks (eif_build equivalent)")
    build.add_argument("--kernel", required=True, type=Path)
    build.add_argument("--cmdline", required=True, help="kernel command line, taken verbatim")
    build.add_argument("--ramdisk", required=True, action="append", type=Path, help="repeat in order")
    build.add_argument("--arch", default="x86_64", choices=["x86_64", "aarch64"])
    build.add_argument("--name", help="ImageName (default: kernel file name)")
    build.add_argument("--version", default="1.0", help="ImageVersion (default 1.0)")
    build.add_argument("--build-time", help="BuildTime (default: SOURCE_DATE_EPOCH or 1970-01-01T00:00:00+00:00)")
    build.add_argument("--build-tool", default="trustdial")
    build.add_argument("--build-tool-version", default="0.1.0")
    build.add_argument("--img-os", default="OS")
    build.add_argument("--img-kernel", default="kernel")
    build.add_argument("--docker-info", type=Path, help="JSON file for DockerInfo (default null)")
    build.add_argument("--custom-metadata", type=Path, help="JSON file for CustomMetadata (default null)")
    build.add_argument("--sign-key", type=Path, help="PEM EC private key (needs --sign-cert)")
    build.add_argument("--sign-cert", type=Path, help="PEM certificate, stored verbatim")
    build.add_argument("--output", required=True, type=Path)
    build.add_argument("--json", action="store_true", help="print one JSON object")
    build.set_defaults(run=run_build)

    ramdisk = commands.add_parser("ramdisk", help="write a bootstrap or customer ramdisk as nitro-cli/linuxkit does")
    ramdisk.add_argument("--bootstrap", action="store_true", help="bootstrap ramdisk from --init and --nsm")
    ramdisk.add_argument("--init", type=Path)
    ramdisk.add_argument("--nsm", type=Path)
    ramdisk.add_argument("--rootfs", type=Path, help="exported root filesystem tar (docker export)")
    ramdisk.add_argument("--image", type=Path, help="docker save / OCI image archive")
    ramdisk.add_argument(
        "--config", type=Path, help="docker image inspect JSON or OCI image config (with --image: overrides its own)"
    )
    ramdisk.add_argument("--output", required=True, type=Path)
    ramdisk.add_argument("--json", action="store_true", help="print one JSON object")
    ramdisk.set_defaults(run=run_ramdisk)

    register_image(commands)


def _load_json(path: Path | None, what: str) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BuildError("EIF_BUILD_METADATA", f"{what} file {path}: {err}") from err


def run_build(args: argparse.Namespace) -> int:
    def action() -> dict[str, Any]:
        if (args.sign_key is None) != (args.sign_cert is None):
            raise BuildError("EIF_BUILD_SIGNING", "--sign-key and --sign-cert go together")
        signer = None
        if args.sign_key is not None:
            signer = EifSigner.from_pem_files(args.sign_key.read_bytes(), args.sign_cert.read_bytes())
        metadata = EifMetadata(
            image_name=args.name if args.name is not None else args.kernel.name,
            image_version=args.version,
            build_time=args.build_time if args.build_time is not None else _default_build_time(),
            build_tool=args.build_tool,
            build_tool_version=args.build_tool_version,
            operating_system=args.img_os,
            kernel_version=args.img_kernel,
            docker_info=_load_json(args.docker_info, "--docker-info"),
            custom_metadata=_load_json(args.custom_metadata, "--custom-metadata"),
        )
        write_eif(
            args.output,
            kernel=args.kernel,
            cmdline=args.cmdline.encode("utf-8"),
            ramdisks=args.ramdisk,
            arch=args.arch,
            metadata=metadata,
            signer=signer,
        )
        m = measure_eif(args.output)
        return {"output": str(args.output), **m.pcrs(), "sha256": m.sha256, "sha384": m.sha384}

    return guarded(action, args.json)


def run_ramdisk(args: argparse.Namespace) -> int:
    def action() -> dict[str, Any]:
        if args.bootstrap:
            if args.init is None or args.nsm is None or args.rootfs or args.image or args.config:
                raise BuildError("EIF_BUILD_INPUT", "--bootstrap takes exactly --init and --nsm")
            build_bootstrap_ramdisk(args.output, init=args.init, nsm=args.nsm)
        else:
            if (args.rootfs is None) == (args.image is None):
                raise BuildError("EIF_BUILD_INPUT", "a customer ramdisk needs exactly one of --rootfs and --image")
            if args.rootfs is not None and args.config is None:
                raise BuildError("EIF_BUILD_INPUT", "--rootfs needs --config (docker image inspect or OCI config JSON)")
            config = load_image_config(args.config) if args.config is not None else None
            if args.rootfs is not None:
                assert config is not None
                build_customer_ramdisk(args.output, rootfs_tar=args.rootfs, config=config)
            else:
                build_customer_ramdisk_from_image(args.output, image_tar=args.image, config=config)
        data_hash = hashlib.sha384()
        sha256 = hashlib.sha256()
        with args.output.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                data_hash.update(chunk)
                sha256.update(chunk)
        return {"output": str(args.output), "sha256": sha256.hexdigest(), "sha384": data_hash.hexdigest()}

    return guarded(action, args.json)
