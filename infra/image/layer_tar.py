"""Deterministic layer tars: entries sorted by name, every parent directory present, one fixed
mtime, uid/gid 0 with no user or group names, modes normalised, no atime/ctime or other
extended attributes of the build machine. Equal file contents give equal bytes."""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from infra.image.atomic_output import atomic_output
from infra.image.errors import BuildError


@dataclass(frozen=True)
class LayerFile:
    name: str  # path in the image, relative (no leading /)
    source: Path
    mode: int  # regular-file mode; directories are always 0755


def tree_files(source: Path, destination: str, mode: int | None = None) -> list[LayerFile]:
    """Every regular file below ``source`` (skipping ``__pycache__`` and ``.pyc``) placed under
    ``destination``. ``mode`` forces a mode (COPY --chmod); otherwise 0755 if any execute bit
    is set, else 0644. Symbolic links and special files are refused."""
    destination = destination.strip("/")
    if source.is_file():
        return [LayerFile(destination, source, mode if mode is not None else _mode(source))]
    if not source.is_dir():
        raise BuildError("EIF_BUILD_INPUT", f"layer source {source} does not exist")
    files = []
    for root, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            path = Path(root) / name
            if name.endswith((".pyc", ".pyo")):
                continue
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):
                raise BuildError("EIF_BUILD_INPUT", f"{path} is not a regular file (links are not supported)")
            relative = path.relative_to(source).as_posix()
            files.append(LayerFile(f"{destination}/{relative}", path, mode if mode is not None else _mode(path)))
    return files


def _mode(path: Path) -> int:
    return 0o755 if path.stat().st_mode & 0o111 else 0o644


def _directories(names: Iterable[str]) -> set[str]:
    found = set()
    for name in names:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            found.add("/".join(parts[:i]))
    return found


def write_layer(output: Path, files: Iterable[LayerFile], mtime: int) -> None:
    entries = {}
    for f in files:
        if f.name.startswith("/") or ".." in f.name.split("/") or not f.name:
            raise BuildError("EIF_BUILD_INPUT", f"layer path {f.name!r} is not a relative path inside the image")
        if f.name in entries:
            raise BuildError("EIF_BUILD_INPUT", f"layer path {f.name!r} is given twice")
        entries[f.name] = f
    directories = _directories(entries)
    clash = directories & set(entries)
    if clash:
        raise BuildError("EIF_BUILD_INPUT", f"layer path {sorted(clash)[0]!r} is both a file and a directory")
    with atomic_output(output) as out, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(directories | set(entries), key=lambda n: n.encode()):
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
            if name in directories:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                continue
            f = entries[name]
            info.type, info.mode, info.size = tarfile.REGTYPE, f.mode, f.source.stat().st_size
            with f.source.open("rb") as data:
                tar.addfile(info, data)
