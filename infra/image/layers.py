"""Apply image layers as Docker's overlay2 driver presents them, add the container init layer,
and list the merged filesystem as ``docker export`` streams it.

* Each layer's whiteouts (``.wh.NAME`` hides NAME below) and opaque markers (``.wh..wh..opq``
  hides everything below in that directory) act on the lower layers only.
* A directory present in several layers takes the attributes of the topmost one; any other
  entry replaces what was below (a whole subtree when it replaces a directory).
* Hard links must target a path in the same layer (Docker links inside the layer's own diff
  directory); all paths of one inode share its attributes.
* The export walk is depth-first with names sorted within each directory, directory names get a
  trailing ``/``, mtimes are whole seconds, and every path after the first one of a regular file
  with several links becomes a hard link to that first path.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from infra.image import tar_reader as tar
from infra.image.errors import BuildError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
INIT_LAYER_MTIME = 0
_inode_ids = itertools.count(1)


@dataclass
class Node:
    member: tar.TarMember
    inode: int
    children: dict[str, Node] = field(default_factory=dict)


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def _implicit_dir(name: str) -> Node:
    member = tar.TarMember(name, tar.DIRECTORY, 0o755, 0, 0, 0, 0, "", 0, 0, 0)
    return Node(member, next(_inode_ids))


class MergedTree:
    def __init__(self) -> None:
        self.root = _implicit_dir("")

    def _parent(self, parts: list[str], create: bool) -> Node | None:
        node = self.root
        for i, part in enumerate(parts[:-1]):
            child = node.children.get(part)
            if child is None:
                if not create:
                    return None
                child = node.children[part] = _implicit_dir("/".join(parts[: i + 1]))
            if child.member.type != tar.DIRECTORY:
                if not create:
                    return None
                raise BuildError(
                    "TAR_UNSAFE_PATH",
                    f"layer entry {'/'.join(parts)!r} goes through non-directory {child.member.name!r}",
                )
            node = child
        return node

    def remove(self, path: str) -> None:
        parts = _parts(path)
        parent = self._parent(parts, create=False)
        if parent is not None:
            parent.children.pop(parts[-1], None)

    def clear_dir(self, path: str) -> None:
        parts = _parts(path)
        if not parts:
            self.root.children.clear()
            return
        parent = self._parent(parts, create=False)
        node = parent.children.get(parts[-1]) if parent else None
        if node is not None and node.member.type == tar.DIRECTORY:
            node.children.clear()

    def lookup(self, path: str) -> Node | None:
        parts = _parts(path)
        parent = self._parent(parts, create=False)
        return parent.children.get(parts[-1]) if parent else None

    def put(self, member: tar.TarMember, inode: int) -> Node:
        parts = _parts(member.name)
        parent = self._parent(parts, create=True)
        assert parent is not None
        existing = parent.children.get(parts[-1])
        if existing is not None and existing.member.type == tar.DIRECTORY and member.type == tar.DIRECTORY:
            existing.member = member
            return existing
        node = parent.children[parts[-1]] = Node(member, inode)
        return node


def apply_layer(tree: MergedTree, members: Sequence[tar.TarMember]) -> None:
    """Apply one layer's members (in archive order) on top of ``tree``."""
    paths = set()
    for m in members:
        if m.name.startswith("/") or ".." in m.name.split("/"):
            raise BuildError("TAR_UNSAFE_PATH", f"layer member {m.name!r} is absolute or climbs out of the root")
        paths.add("/".join(_parts(m.name)))
    for m in members:
        base = m.path.rsplit("/", 1)[-1]
        directory = m.path[: -len(base)].rstrip("/")
        if base == OPAQUE:
            tree.clear_dir(directory)
        elif base.startswith(WHITEOUT):
            tree.remove(f"{directory}/{base[len(WHITEOUT) :]}" if directory else base[len(WHITEOUT) :])
    inodes: dict[str, Node] = {}
    for m in members:
        base = m.path.rsplit("/", 1)[-1]
        if base.startswith(WHITEOUT) or not _parts(m.name):
            continue
        key = "/".join(_parts(m.name))
        if m.type == tar.HARDLINK:
            target_key = "/".join(_parts(m.linkname))
            if m.linkname.startswith("/") or ".." in m.linkname.split("/") or target_key not in paths:
                raise BuildError(
                    "TAR_UNSAFE_PATH",
                    f"hard link {m.name!r} -> {m.linkname!r} does not target a file of the same layer",
                )
            target = inodes.get(target_key)
            if target is None or target.member.type != tar.REGULAR:
                raise BuildError("TAR_UNSAFE_PATH", f"hard link {m.name!r} targets {m.linkname!r}, not a regular file")
            shared = target.member.with_(mode=m.mode, uid=m.uid, gid=m.gid, mtime=m.mtime)
            for node in inodes.values():
                if node.inode == target.inode:
                    node.member = shared.with_(name=node.member.name)
            inodes[key] = tree.put(shared.with_(name=m.name), target.inode)
            continue
        if m.type == tar.SYMLINK:
            tar.check_safe(m, paths)
        inodes[key] = tree.put(m, next(_inode_ids))


def init_layer_members() -> list[tar.TarMember]:
    """What Docker's init layer adds to every container (daemon/initlayer)."""

    def entry(name: str, kind: str, mode: int, link: str = "") -> tar.TarMember:
        return tar.TarMember(name, kind, mode, 0, 0, INIT_LAYER_MTIME, 0, link, 0, 0, 0)

    return [
        entry("dev", tar.DIRECTORY, 0o755),
        entry("dev/pts", tar.DIRECTORY, 0o755),
        entry("dev/shm", tar.DIRECTORY, 0o755),
        entry("proc", tar.DIRECTORY, 0o755),
        entry("sys", tar.DIRECTORY, 0o755),
        entry("etc", tar.DIRECTORY, 0o755),
        entry(".dockerenv", tar.REGULAR, 0o755),
        entry("etc/resolv.conf", tar.REGULAR, 0o755),
        entry("etc/hosts", tar.REGULAR, 0o755),
        entry("etc/hostname", tar.REGULAR, 0o755),
        entry("dev/console", tar.REGULAR, 0o755),
        entry("etc/mtab", tar.SYMLINK, 0o777, "/proc/mounts"),
    ]


def export_members(tree: MergedTree) -> list[tar.TarMember]:
    """The merged filesystem in ``docker export`` order and form."""
    out: list[tar.TarMember] = []
    first_path: dict[int, str] = {}

    def walk(node: Node, prefix: str) -> None:
        for name in sorted(node.children, key=lambda n: n.encode("utf-8", errors="surrogateescape")):
            child = node.children[name]
            path = f"{prefix}{name}"
            m = child.member
            if m.type == tar.DIRECTORY:
                out.append(m.with_(name=path + "/"))
                walk(child, path + "/")
                continue
            if m.type == tar.REGULAR and child.inode in first_path:
                out.append(m.with_(name=path, type=tar.HARDLINK, linkname=first_path[child.inode], size=0))
                continue
            if m.type == tar.REGULAR:
                first_path[child.inode] = path
            out.append(m.with_(name=path))

    walk(tree.root, "")
    return out
