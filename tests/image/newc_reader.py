"""A small reader of newc cpio archives (the EIF's ramdisks), written from the format itself (110-byte ASCII
header: magic ``070701`` and thirteen 8-digit hex fields; the name, NUL-terminated, and the data each padded to
4 bytes) and independent of the project's writer, so that tests can look at what a ramdisk really holds."""

from __future__ import annotations

import stat
from dataclasses import dataclass

HEADER = 110
FIELDS = ("ino", "mode", "uid", "gid", "nlink", "mtime", "filesize", "devmajor", "devminor", "rdevmajor",
          "rdevminor", "namesize", "check")  # fmt: skip


@dataclass(frozen=True)
class Entry:
    name: str
    mode: int
    data: bytes

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.mode)


def _pad4(offset: int) -> int:
    return (offset + 3) & ~3


def read_newc(archive: bytes, prefix: str = "") -> dict[str, Entry]:
    """Every entry (up to the trailer) whose name starts with ``prefix``; a later entry of a name wins."""
    entries: dict[str, Entry] = {}
    pos = 0
    while True:
        header = archive[pos : pos + HEADER]
        if header[:6] != b"070701":
            raise ValueError(f"no newc header at offset {pos}")
        values = dict(zip(FIELDS, (int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)), strict=True))
        name_end = pos + HEADER + values["namesize"]
        name = archive[pos + HEADER : name_end - 1].decode()
        data_at = _pad4(name_end)
        if name == "TRAILER!!!":
            return entries
        size = values["filesize"]
        if name.startswith(prefix):
            entries[name] = Entry(name, values["mode"], archive[data_at : data_at + size])
        pos = _pad4(data_at + size)
