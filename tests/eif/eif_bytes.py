"""Independent helpers for tests: rewrite fields of an EIF and fix its CRC with the formula
from the format note (zlib CRC-32 over every byte except the CRC field)."""

from __future__ import annotations

import struct
import zlib


def fix_crc(data: bytes) -> bytes:
    crc = zlib.crc32(data[548:], zlib.crc32(data[:544]))
    return data[:544] + struct.pack(">I", crc) + data[548:]


def section_header_offsets(data: bytes) -> list[int]:
    count = struct.unpack(">H", data[26:28])[0]
    return list(struct.unpack(">32Q", data[28:284])[:count])


def parse_newc(data: bytes) -> list[dict[str, object]]:
    """Minimal newc reader (test oracle): entries with header fields, name and data."""
    entries = []
    pos = 0
    while True:
        assert data[pos : pos + 6] == b"070701", f"bad magic at {pos}"
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        ino, mode, uid, gid, nlink, mtime, size, dmaj, dmin, rmaj, rmin, namesize, _ = fields
        name = data[pos + 110 : pos + 110 + namesize - 1].decode("utf-8")
        pos = (pos + 110 + namesize + 3) & ~3
        body = data[pos : pos + size]
        pos = (pos + size + 3) & ~3
        entries.append(
            {
                "ino": ino,
                "mode": mode,
                "uid": uid,
                "gid": gid,
                "nlink": nlink,
                "mtime": mtime,
                "size": size,
                "dev": (dmaj, dmin),
                "rdev": (rmaj, rmin),
                "name": name,
                "data": body,
            }
        )
        if name == "TRAILER!!!":
            return entries
