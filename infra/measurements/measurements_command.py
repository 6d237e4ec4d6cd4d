"""``trustdial measurements create|sign|publish``."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from trustdial_verifier.unstable.eif import measure_eif
from trustdial_verifier.unstable.measurements import IMAGE_INPUTS

from infra.image.atomic_output import atomic_output
from infra.image.blobs import load_blobs
from infra.image.command_output import guarded
from infra.image.image_archive import open_image_archive
from infra.image.image_build import load_build_summary
from infra.measurements.create import create_manifest
from infra.measurements.errors import MeasurementsError
from infra.measurements.publish import publish
from infra.measurements.signers import signer_from_spec
from infra.measurements.signing import sign_manifest


def _aws(args: argparse.Namespace, service: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=args.endpoint_url, region_name=args.region)


def _json_arg(path: Path | None, what: str) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MeasurementsError("MANIFEST_CREATE_INPUT", f"{what} {path}: {err}") from err


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("measurements", help="create, sign and publish measurement manifests")
    commands = parser.add_subparsers(dest="measurements_command", required=True, metavar="SUBCOMMAND")

    create = commands.add_parser("create", help="write a manifest for an EIF")
    create.add_argument("--eif", required=True, type=Path)
    create.add_argument("--source-revision", required=True)
    create.add_argument("--build-time", default="1970-01-01T00:00:00+00:00")
    create.add_argument("--blob", action="append", default=[], metavar="NAME=SHA256", help="repeatable")
    create.add_argument("--blobs-dir", type=Path, help="record sha256 of kernel, init, nsm.ko, cmdline from here")
    create.add_argument("--image-archive", type=Path, help="record the config digest of this docker save/OCI archive")
    create.add_argument("--image-digest", help="sha256:<hex> of the image config")
    create.add_argument(
        "--image-build",
        type=Path,
        help="build.json of `trustdial image build`: records the Debian lock, rootfs and runtime lock sha256 "
        "(what went into PCR2), the image config digest, and the models the image serves (each model file's "
        "sha256, each LLM bundle's digest)",
    )
    create.add_argument(
        "--models",
        type=Path,
        help='JSON {"name": {"sha256": hex}}: models beside those of --image-build (a name in both must agree)',
    )
    create.add_argument("--zk", type=Path, help='JSON {"name": {"vk_sha256": ..., "srs_kind": ...}}')
    create.add_argument("--pipeline-policy-sha256")
    create.add_argument("--output", required=True, type=Path)
    create.add_argument("--json", action="store_true")
    create.set_defaults(run=run_create)

    sign = commands.add_parser("sign", help="sign a manifest (ES384 COSE_Sign1) with a PEM key or kms:KEY_ID")
    sign.add_argument("--manifest", required=True, type=Path)
    sign.add_argument("--key", required=True, help="PEM P-384 private key path, or kms:KEY_ID")
    sign.add_argument("--output", required=True, type=Path)
    sign.add_argument("--endpoint-url")
    sign.add_argument("--region")
    sign.add_argument("--json", action="store_true")
    sign.set_defaults(run=run_sign)

    pub = commands.add_parser("publish", help="store a signed manifest (and EIF) in S3 and SSM")
    pub.add_argument("--signed", required=True, type=Path)
    pub.add_argument("--eif", type=Path)
    pub.add_argument("--bucket", required=True)
    pub.add_argument("--deployment", required=True)
    pub.add_argument("--endpoint-url")
    pub.add_argument("--region")
    pub.add_argument("--json", action="store_true")
    pub.set_defaults(run=run_publish)


def run_create(args: argparse.Namespace) -> int:
    def action() -> dict[str, Any]:
        blobs = {}
        for item in args.blob:
            name, sep, digest = item.partition("=")
            if not sep:
                raise MeasurementsError("MANIFEST_CREATE_INPUT", f"--blob {item!r} is not NAME=SHA256")
            blobs[name] = digest
        if args.blobs_dir is not None:
            measurement = measure_eif(args.eif)
            blobs = {**load_blobs(args.blobs_dir, measurement.arch, allow_unpinned=True).sha256, **blobs}
        image_digest = args.image_digest
        if args.image_archive is not None:
            workdir = Path(tempfile.mkdtemp(prefix="trustdial-manifest-"))
            try:
                image_digest = open_image_archive(args.image_archive, workdir, extract_layers=False).config_digest
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        image_inputs = None
        models = _json_arg(args.models, "--models")
        if args.image_build is not None:
            summary = load_build_summary(args.image_build)
            image_inputs = {name: str(summary.get(name)) for name in IMAGE_INPUTS}
            if image_digest is None and isinstance(summary.get("image_config_digest"), str):
                image_digest = str(summary["image_config_digest"])
            models = _merge_models(summary.get("models", {}), models)
        raw = create_manifest(
            eif=args.eif,
            source_revision=args.source_revision,
            build_time=args.build_time,
            blobs=blobs,
            image_digest=image_digest,
            image_inputs=image_inputs,
            models=models,
            zk=_json_arg(args.zk, "--zk"),
            pipeline_policy_sha256=args.pipeline_policy_sha256,
        )
        with atomic_output(args.output) as out:
            out.write(raw)
        return {"output": str(args.output), "manifest_sha384": hashlib.sha384(raw).hexdigest()}

    return guarded(action, args.json)


def _merge_models(served: Any, given: Any) -> Any:
    """The image's served models (build.json) with the ``--models`` entries; a name in both must name the same
    digest (the manifest must not pin anything but what the image holds)."""
    if not isinstance(served, dict):
        raise MeasurementsError("MANIFEST_CREATE_INPUT", "the image build summary's models is not a JSON object")
    if given is None:
        return served
    if not isinstance(given, dict):
        return given  # create_manifest's schema check reports the shape
    for name in served.keys() & given.keys():
        if served[name] != given[name]:
            raise MeasurementsError(
                "MANIFEST_CREATE_INPUT",
                f"--models gives {name!r} as {given[name]!r}, but the image serves it as {served[name]!r}",
            )
    return {**served, **given}


def run_sign(args: argparse.Namespace) -> int:
    def action() -> dict[str, Any]:
        signer = signer_from_spec(args.key, kms_client_factory=lambda: _aws(args, "kms"))
        signed = sign_manifest(args.manifest.read_bytes(), signer)
        with atomic_output(args.output) as out:
            out.write(signed)
        return {"output": str(args.output), "key_id": signer.key_id}

    return guarded(action, args.json)


def run_publish(args: argparse.Namespace) -> int:
    def action() -> dict[str, Any]:
        result = publish(
            signed_manifest=args.signed.read_bytes(),
            bucket=args.bucket,
            deployment=args.deployment,
            s3=_aws(args, "s3"),
            ssm=_aws(args, "ssm"),
            eif=args.eif,
        )
        return {"current": result.current, "parameters": result.parameters}

    return guarded(action, args.json)
