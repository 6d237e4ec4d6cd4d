"""Read a ``docker save`` archive (legacy ``manifest.json`` or OCI layout) or an OCI image
archive, extract its layers to a temporary directory, and build the customer ramdisk from the
merged filesystem exactly as nitro-cli would from ``docker create`` + ``docker export``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from infra.image import tar_reader as tar
from infra.image.atomic_output import atomic_output
from infra.image.errors import BuildError
from infra.image.image_config import ImageConfig, parse_image_config
from infra.image.layers import MergedTree, apply_layer, export_members, init_layer_members
from infra.image.ramdisks import write_customer_cpio

MAX_JSON = 4 << 20


@dataclass(frozen=True)
class ImageArchive:
    config: dict[str, Any]
    config_digest: str
    layers: list[Path]


def _bad(reason: str) -> BuildError:
    return BuildError("IMAGE_ARCHIVE_INVALID", reason)


def _index(stream: BinaryIO, size: int) -> dict[str, tar.TarMember]:
    members = {}
    for m in tar.iter_members(stream, size):
        if m.name.startswith("/") or ".." in m.name.split("/"):
            raise BuildError("TAR_UNSAFE_PATH", f"archive member {m.name!r} is absolute or climbs out")
        members[m.name.lstrip("./") if m.name.startswith("./") else m.name] = m
    return members


def _read(stream: BinaryIO, members: dict[str, tar.TarMember], name: str) -> bytes:
    m = members.get(name)
    if m is None or m.type != tar.REGULAR:
        raise _bad(f"archive has no file {name!r}")
    if m.size > MAX_JSON:
        raise _bad(f"{name!r} is {m.size} bytes, too large for image metadata")
    return b"".join(tar.read_data(stream, m))


def _json(stream: BinaryIO, members: dict[str, tar.TarMember], name: str) -> Any:
    try:
        return json.loads(_read(stream, members, name))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _bad(f"{name!r} is not JSON: {err}") from err


def _blob(digest: Any) -> str:
    if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
        raise _bad(f"unsupported blob digest {digest!r}")
    return f"blobs/sha256/{digest[7:]}"


def _extract_layer(stream: BinaryIO, member: tar.TarMember, target: Path) -> None:
    """Copy a layer out, gunzipping it when compressed (by magic, as Docker detects it)."""
    chunks = tar.read_data(stream, member)
    with target.open("wb") as out:
        first = next(chunks, b"")
        if first[:2] == b"\x1f\x8b":
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                out.write(decompressor.decompress(first))
                for chunk in chunks:
                    out.write(decompressor.decompress(chunk))
                out.write(decompressor.flush())
            except zlib.error as err:
                raise _bad(f"layer {member.name!r} is not valid gzip: {err}") from err
            if not decompressor.eof:
                raise _bad(f"layer {member.name!r} gzip stream is truncated")
        elif first[:4] == b"\x28\xb5\x2f\xfd":
            raise _bad(f"layer {member.name!r} is zstd-compressed, which is not supported")
        else:
            out.write(first)
            for chunk in chunks:
                out.write(chunk)


def open_image_archive(path: Path, workdir: Path, *, extract_layers: bool = True) -> ImageArchive:
    with path.open("rb") as stream:
        members = _index(stream, os.fstat(stream.fileno()).st_size)
        if "manifest.json" in members:
            manifest = _json(stream, members, "manifest.json")
            if not isinstance(manifest, list) or len(manifest) != 1 or not isinstance(manifest[0], dict):
                raise _bad("manifest.json must list exactly one image")
            config_name = manifest[0].get("Config")
            layer_names = manifest[0].get("Layers")
        elif "index.json" in members:
            index = _json(stream, members, "index.json")
            descriptor = index
            for _ in range(4):
                manifests = descriptor.get("manifests") if isinstance(descriptor, dict) else None
                if manifests is None:
                    break
                if not isinstance(manifests, list) or len(manifests) != 1:
                    raise _bad("OCI index must reference exactly one image manifest")
                descriptor = _json(stream, members, _blob(manifests[0].get("digest")))
            if not isinstance(descriptor, dict) or not isinstance(descriptor.get("config"), dict):
                raise _bad("OCI image manifest lacks a config descriptor")
            config_name = _blob(descriptor["config"].get("digest"))
            layers = descriptor.get("layers")
            if not isinstance(layers, list):
                raise _bad("OCI image manifest lacks layers")
            layer_names = [_blob(d.get("digest") if isinstance(d, dict) else None) for d in layers]
        else:
            raise _bad("neither manifest.json (docker save) nor index.json (OCI) in the archive")
        if not isinstance(config_name, str) or not isinstance(layer_names, list):
            raise _bad("image manifest lacks Config/Layers")
        raw_config = _read(stream, members, config_name)
        try:
            config = json.loads(raw_config)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise _bad(f"image config is not JSON: {err}") from err
        paths = []
        for i, name in enumerate(layer_names if extract_layers else []):
            if not isinstance(name, str) or name not in members:
                raise _bad(f"layer {name!r} is not in the archive")
            target = workdir / f"layer{i}.tar"
            _extract_layer(stream, members[name], target)
            paths.append(target)
    return ImageArchive(config, "sha256:" + hashlib.sha256(raw_config).hexdigest(), paths)


def build_customer_ramdisk_from_image(
    output: str | os.PathLike[str], *, image_tar: Path, config: ImageConfig | None = None
) -> ImageArchive:
    """Customer ramdisk from an image archive. ``config`` overrides the archive's own Cmd/Env."""
    if not image_tar.is_file():
        raise BuildError("EIF_BUILD_INPUT", f"image archive not found: {image_tar}")
    workdir = Path(tempfile.mkdtemp(prefix="trustdial-layers-"))
    try:
        archive = open_image_archive(image_tar, workdir)
        image_config = config if config is not None else parse_image_config(archive.config)
        tree = MergedTree()
        with ExitStack() as stack:
            streams = [stack.enter_context(p.open("rb")) for p in archive.layers]
            for source, layer in enumerate(streams):
                members = [m.with_(source=source) for m in tar.iter_members(layer, os.fstat(layer.fileno()).st_size)]
                apply_layer(tree, members)
            apply_layer(tree, init_layer_members())
            exported = export_members(tree)
            with atomic_output(output) as out:
                write_customer_cpio(out, exported, lambda m: tar.read_data(streams[m.source], m), image_config)
        return archive
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
