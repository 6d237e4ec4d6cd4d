"""The two ramdisks nitro-cli puts in every EIF, written as linuxkit writes them.

* bootstrap: ``dev/`` (0755), ``init`` and ``nsm.ko`` (0755), linuxkit's fixed mtime.
* customer: ``rootfs`` + the exported container filesystem under ``rootfs/`` (exclusions,
  replacements and touched entries as linuxkit applies them, hard links turned into relative
  symlinks by the cpio conversion), then the YAML ``files:`` (``rootfs`` again, ``rootfs/{dev,
  run,sys,var,proc,tmp}``, ``cmd``, ``env``).

Members of the exported tar are taken in docker-export walk order whatever order the tar holds
them in, so a reshuffled stream yields the same bytes.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from infra.image import linuxkit_rules as rules
from infra.image import tar_reader as tar
from infra.image.atomic_output import atomic_output
from infra.image.cpio_writer import NewcWriter
from infra.image.errors import BuildError
from infra.image.image_config import ImageConfig

_KIND = {
    tar.REGULAR: "reg",
    tar.SYMLINK: "symlink",
    tar.CHAR: "char",
    tar.BLOCKDEV: "block",
    tar.DIRECTORY: "dir",
    tar.FIFO: "fifo",
}


def _file_chunks(path: Path) -> Iterable[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            yield chunk


def write_bootstrap_cpio(out: BinaryIO, init: Path, nsm: Path) -> None:
    writer = NewcWriter(out)
    writer.add("dev", "dir", perm=0o755, mtime=rules.DEFAULT_MTIME)
    for name, path in (("init", init), ("nsm.ko", nsm)):
        writer.add(
            name, "reg", perm=0o755, mtime=rules.DEFAULT_MTIME, size=path.stat().st_size, data=_file_chunks(path)
        )
    writer.close()


def build_bootstrap_ramdisk(output: str | os.PathLike[str], *, init: Path, nsm: Path) -> None:
    for path in (init, nsm):
        if not path.is_file():
            raise BuildError("EIF_BUILD_INPUT", f"input file not found: {path}")
    with atomic_output(output) as out:
        write_bootstrap_cpio(out, init, nsm)


def _relative(from_dir: str, target: str) -> str:
    """Go's filepath.Rel for two relative paths."""
    return posixpath.relpath(posixpath.normpath(target), posixpath.normpath(from_dir) or ".")


DataSource = Callable[[tar.TarMember], Iterable[bytes]]


def _emit_member(writer: NewcWriter, data_for: DataSource, m: tar.TarMember, name: str, mtime: int) -> None:
    if m.type == tar.HARDLINK:
        target = _relative(posixpath.dirname(name), rules.CUSTOMER_PREFIX + m.linkname)
        data = target.encode("utf-8", errors="surrogateescape")
        writer.add(name, "symlink", perm=m.mode, uid=m.uid, gid=m.gid, mtime=mtime, size=len(data), data=[data])
    elif m.type == tar.SYMLINK:
        data = m.linkname.encode("utf-8", errors="surrogateescape")
        writer.add(name, "symlink", perm=m.mode, uid=m.uid, gid=m.gid, mtime=mtime, size=len(data), data=[data])
    elif m.type == tar.REGULAR:
        writer.add(name, "reg", perm=m.mode, uid=m.uid, gid=m.gid, mtime=mtime, size=m.size, data=data_for(m))
    else:
        writer.add(name, _KIND[m.type], perm=m.mode, uid=m.uid, gid=m.gid, mtime=mtime, rdev=(m.devmajor, m.devminor))


def write_customer_cpio(
    out: BinaryIO, members: Sequence[tar.TarMember], data_for: DataSource, config: ImageConfig
) -> None:
    """``members``: the exported filesystem in docker-export walk order."""
    cmd, env = config.cmd_file(), config.env_file()
    writer = NewcWriter(out)
    prefix = rules.CUSTOMER_PREFIX
    writer.add(prefix.rstrip("/"), "dir", perm=0o755, mtime=rules.DEFAULT_MTIME)
    found: set[str] = set()
    for m in members:
        if m.name in rules.EXCLUDE:
            continue
        if m.name in rules.TOUCH:
            found.add(m.name)
        if m.name == "etc/hosts":
            if m.type != tar.REGULAR:
                raise BuildError("TAR_UNSUPPORTED_MEMBER", "etc/hosts in the export is not a regular file")
            writer.add(
                prefix + m.name,
                "reg",
                perm=m.mode,
                uid=m.uid,
                gid=m.gid,
                mtime=rules.DEFAULT_MTIME,
                size=len(rules.HOSTS),
                data=[rules.HOSTS],
            )
        elif m.name == "etc/resolv.conf":
            link = rules.RESOLV_SYMLINK.encode()
            writer.add(
                prefix + m.name,
                "symlink",
                perm=m.mode,
                uid=m.uid,
                gid=m.gid,
                mtime=rules.DEFAULT_MTIME,
                size=len(link),
                data=[link],
            )
        else:
            mtime = rules.DEFAULT_MTIME if m.name in rules.TOUCH else m.mtime
            _emit_member(writer, data_for, m, prefix + m.name, mtime)
    for name in sorted(rules.TOUCH):
        if name in found:
            continue
        kind, perm, target = rules.TOUCH[name]
        full = prefix + name.rstrip("/")
        if name == "etc/hosts":
            writer.add(full, "reg", perm=perm, mtime=rules.DEFAULT_MTIME, size=len(rules.HOSTS), data=[rules.HOSTS])
        elif kind == "symlink":
            writer.add(full, kind, perm=perm, mtime=rules.DEFAULT_MTIME, size=len(target), data=[target.encode()])
        else:
            writer.add(full, kind, perm=perm, mtime=rules.DEFAULT_MTIME)
    writer.add(prefix.rstrip("/"), "dir", perm=0o755, mtime=rules.DEFAULT_MTIME)
    for directory in rules.CUSTOMER_DIRS:
        writer.add(directory, "dir", perm=0o755, mtime=rules.DEFAULT_MTIME)
    writer.add("cmd", "reg", perm=0o644, mtime=rules.DEFAULT_MTIME, size=len(cmd), data=[cmd])
    writer.add("env", "reg", perm=0o644, mtime=rules.DEFAULT_MTIME, size=len(env), data=[env])
    writer.close()


def build_customer_ramdisk(output: str | os.PathLike[str], *, rootfs_tar: Path, config: ImageConfig) -> None:
    if not rootfs_tar.is_file():
        raise BuildError("EIF_BUILD_INPUT", f"rootfs tar not found: {rootfs_tar}")
    with rootfs_tar.open("rb") as rootfs, atomic_output(output) as out:
        members = tar.read_rootfs_members(rootfs, os.fstat(rootfs.fileno()).st_size)
        write_customer_cpio(out, members, lambda m: tar.read_data(rootfs, m), config)
