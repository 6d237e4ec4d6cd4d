"""Assemble layer tars into an OCI image archive (``oci-layout``, ``index.json``, blobs) with a
fixed configuration, as ``trustdial eif image`` and ``trustdial eif ramdisk --image`` read it.
Layers are stored uncompressed, the archive is written in a fixed order with fixed metadata,
so equal layers and configuration give equal bytes."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.image.atomic_output import atomic_output

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class OciImage:
    config_digest: str
    manifest_digest: str
    layer_digests: tuple[str, ...]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _compact(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = size, mtime, 0o644, 0, 0, "", ""
    return info


def write_oci_archive(
    output: Path,
    *,
    layers: Sequence[tuple[Path, str]],
    cmd: Sequence[str],
    env: Sequence[str],
    workdir: str,
    created: str,
    mtime: int,
    architecture: str = "amd64",
) -> OciImage:
    """``layers``: (tar file, history comment) bottom-up."""
    digests = [_file_sha256(path) for path, _ in layers]
    config = _compact(
        {
            "architecture": architecture,
            "os": "linux",
            "created": created,
            "config": {"Cmd": list(cmd), "Env": list(env), "WorkingDir": workdir},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in digests]},
            "history": [{"created": created, "created_by": comment} for _, comment in layers],
        }
    )
    config_digest = hashlib.sha256(config).hexdigest()
    manifest = _compact(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": f"sha256:{config_digest}", "size": len(config)},
            "layers": [
                {"mediaType": LAYER_MEDIA_TYPE, "digest": f"sha256:{d}", "size": path.stat().st_size}
                for d, (path, _) in zip(digests, layers, strict=True)
            ],
        }
    )
    manifest_digest = hashlib.sha256(manifest).hexdigest()
    index = _compact(
        {
            "schemaVersion": 2,
            "manifests": [{"mediaType": MANIFEST_MEDIA_TYPE, "digest": f"sha256:{manifest_digest}",
                           "size": len(manifest)}],
        }
    )  # fmt: skip
    small = [
        ("oci-layout", _compact({"imageLayoutVersion": "1.0.0"})),
        ("index.json", index),
        (f"blobs/sha256/{manifest_digest}", manifest),
        (f"blobs/sha256/{config_digest}", config),
    ]
    with atomic_output(output) as out, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("blobs", "blobs/sha256"):
            info = _info(name, 0, mtime)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in small:
            tar.addfile(_info(name, len(data), mtime), io.BytesIO(data))
        written = set()
        for digest, (path, _) in zip(digests, layers, strict=True):
            if digest in written:
                continue
            written.add(digest)
            with path.open("rb") as stream:
                tar.addfile(_info(f"blobs/sha256/{digest}", path.stat().st_size, mtime), stream)
    return OciImage(f"sha256:{config_digest}", f"sha256:{manifest_digest}", tuple(f"sha256:{d}" for d in digests))
