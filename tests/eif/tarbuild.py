"""Build test tar archives with the standard library (an independent tar writer)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path


def add(
    t: tarfile.TarFile,
    name: str,
    data: bytes = b"",
    *,
    kind: bytes = tarfile.REGTYPE,
    mode: int = 0o644,
    link: str = "",
    mtime: int = 1_600_000_000,
    uid: int = 0,
    gid: int = 0,
    dev: tuple[int, int] = (0, 0),
) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = mtime
    info.uid, info.gid = uid, gid
    info.linkname = link
    info.devmajor, info.devminor = dev
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    t.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def docker_save(path: Path, layers: list[bytes], config: dict[str, object]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        add(t, "config.json", json.dumps(config).encode())
        names = []
        for i, layer in enumerate(layers):
            names.append(f"layer{i}/layer.tar")
            add(t, names[-1], layer)
        add(t, "manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["t:1"], "Layers": names}]).encode())
