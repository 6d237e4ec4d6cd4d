"""SVR4 "newc" cpio exactly as linuxkit's vendored surma/gocpio writes it: inode numbers from 721
(the trailer included), device 3:1, nlink 2 for directories else 1, names NUL-terminated and
padded to 4, data padded to 4, ``TRAILER!!!`` then zero padding to a multiple of 512."""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO

from infra.image.errors import BuildError

FIRST_INODE = 721
TYPE_BITS = {
    "fifo": 0o010000,
    "char": 0o020000,
    "dir": 0o040000,
    "block": 0o060000,
    "reg": 0o100000,
    "symlink": 0o120000,
}
U32 = 0xFFFFFFFF


class NewcWriter:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._inode = FIRST_INODE
        self._written = 0

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._written += len(data)

    def _pad(self, boundary: int) -> None:
        self._write(bytes((-self._written) % boundary))

    def add(
        self,
        name: str,
        kind: str,
        *,
        perm: int,
        uid: int = 0,
        gid: int = 0,
        mtime: int,
        size: int = 0,
        rdev: tuple[int, int] = (0, 0),
        data: Iterable[bytes] = (),
    ) -> None:
        fields = {"uid": uid, "gid": gid, "mtime": mtime, "size": size, "rdev major": rdev[0], "rdev minor": rdev[1]}
        for what, value in fields.items():
            if not 0 <= value <= U32:
                raise BuildError("TAR_UNSUPPORTED_MEMBER", f"{name!r}: {what} {value} does not fit a cpio header")
        encoded = name.encode("utf-8", errors="surrogateescape")
        mode = (perm & 0o7777) | TYPE_BITS[kind]
        values = (
            self._inode,
            mode,
            uid,
            gid,
            2 if kind == "dir" else 1,
            mtime,
            size,
            3,
            1,
            rdev[0],
            rdev[1],
            len(encoded) + 1,
            0,
        )
        self._write(b"070701" + "".join(f"{v:08x}" for v in values).encode("ascii"))
        self._write(encoded + b"\0")
        self._pad(4)
        copied = 0
        for chunk in data:
            self._write(chunk)
            copied += len(chunk)
        if copied != size:
            raise BuildError("TAR_MALFORMED", f"{name!r}: expected {size} data bytes, got {copied}")
        self._pad(4)
        self._inode += 1

    def close(self) -> None:
        values = (self._inode, 0, 0, 0, 1, 0, 0, 3, 1, 0, 0, len(b"TRAILER!!!") + 1, 0)
        self._write(b"070701" + "".join(f"{v:08x}" for v in values).encode("ascii"))
        self._write(b"TRAILER!!!\0")
        self._pad(4)
        self._pad(512)
