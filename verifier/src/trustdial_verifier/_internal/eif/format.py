"""EIF v4 byte layout: a 548-byte big-endian header, then contiguous sections, each a
12-byte header (type u16, flags u16, size u64) followed by ``size`` data bytes."""

from __future__ import annotations

import enum
import struct

MAGIC = b".eif"
VERSION = 4
SUPPORTED_VERSIONS = frozenset({4})
MAX_SECTIONS = 32
HEADER_STRUCT = struct.Struct(">4sHHQQHH32Q32QII")
HEADER_SIZE = HEADER_STRUCT.size  # 548
CRC_OFFSET = 544
SECTION_HEADER_STRUCT = struct.Struct(">HHQ")
SECTION_HEADER_SIZE = SECTION_HEADER_STRUCT.size  # 12
FLAG_ARCH_AARCH64 = 0x1
KNOWN_FLAGS = FLAG_ARCH_AARCH64
DEFAULT_MEM = 1 << 30
DEFAULT_CPUS = 2
ARCH_X86_64 = "x86_64"
ARCH_AARCH64 = "aarch64"

assert HEADER_SIZE == 548


class SectionType(enum.IntEnum):
    KERNEL = 1
    CMDLINE = 2
    RAMDISK = 3
    SIGNATURE = 4
    METADATA = 5

    @property
    def label(self) -> str:
        return self.name.lower()


def arch_from_flags(flags: int) -> str:
    return ARCH_AARCH64 if flags & FLAG_ARCH_AARCH64 else ARCH_X86_64


def flags_for_arch(arch: str) -> int:
    if arch == ARCH_X86_64:
        return 0
    if arch == ARCH_AARCH64:
        return FLAG_ARCH_AARCH64
    raise ValueError(f"unknown architecture {arch!r}; expected {ARCH_X86_64!r} or {ARCH_AARCH64!r}")
