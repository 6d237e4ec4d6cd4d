"""Write an EIF byte-identical to aws-nitro-enclaves-image-format's ``EifBuilder``.

Section order: kernel, cmdline, metadata, ramdisk₀…ₙ, [signature]; contiguous, no padding;
header CRC32 over every byte except the CRC field. Inputs are read twice (once to compute PCR0,
which the signature needs before the header can be laid out, once to write); a change between
the two reads is refused. Output is all-or-nothing.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from trustdial_verifier.unstable.eif import (
    CRC_OFFSET,
    DEFAULT_CPUS,
    DEFAULT_MEM,
    HEADER_SIZE,
    HEADER_STRUCT,
    MAGIC,
    MAX_SECTIONS,
    SECTION_HEADER_SIZE,
    SECTION_HEADER_STRUCT,
    VERSION,
    SectionType,
    extend_pcr,
    flags_for_arch,
)

from infra.image.atomic_output import atomic_output
from infra.image.eif_metadata import EifMetadata
from infra.image.eif_signing import EifSigner
from infra.image.errors import BuildError

CHUNK = 1 << 20


@dataclass(frozen=True)
class EifBuildResult:
    path: Path
    pcr0: str
    size: int


def _digest_files(paths: Sequence[Path], hasher: hashlib._Hash) -> None:
    for path in paths:
        with path.open("rb") as stream:
            while chunk := stream.read(CHUNK):
                hasher.update(chunk)


def _copy(path: Path, out: BinaryIO, crc: int, hasher: hashlib._Hash, expected_size: int) -> int:
    copied = 0
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            out.write(chunk)
            crc = zlib.crc32(chunk, crc)
            hasher.update(chunk)
            copied += len(chunk)
    if copied != expected_size:
        raise BuildError("EIF_INPUT_CHANGED", f"{path} changed size during the build ({expected_size} → {copied})")
    return crc


def write_eif(
    output: str | os.PathLike[str],
    *,
    kernel: Path,
    cmdline: bytes,
    ramdisks: Sequence[Path],
    arch: str,
    metadata: EifMetadata,
    signer: EifSigner | None = None,
) -> EifBuildResult:
    if b"\0" in cmdline:
        raise BuildError("EIF_BUILD_INPUT", "cmdline contains a NUL byte")
    if not ramdisks:
        raise BuildError("EIF_BUILD_INPUT", "at least one ramdisk is required")
    try:
        flags = flags_for_arch(arch)
    except ValueError as err:
        raise BuildError("EIF_BUILD_INPUT", str(err)) from err
    for path in (kernel, *ramdisks):
        if not path.is_file():
            raise BuildError("EIF_BUILD_INPUT", f"input file not found: {path}")
    metadata_bytes = metadata.to_bytes()

    image = hashlib.sha384()
    _digest_files([kernel], image)
    image.update(cmdline)
    _digest_files(list(ramdisks), image)
    pcr0 = extend_pcr(image.digest())
    signature = signer.section(pcr0) if signer else None

    sizes = [kernel.stat().st_size, len(cmdline), len(metadata_bytes), *(p.stat().st_size for p in ramdisks)]
    types = [SectionType.KERNEL, SectionType.CMDLINE, SectionType.METADATA] + [SectionType.RAMDISK] * len(ramdisks)
    if signature is not None:
        sizes.append(len(signature))
        types.append(SectionType.SIGNATURE)
    if len(sizes) > MAX_SECTIONS:
        raise BuildError("EIF_BUILD_INPUT", f"{len(sizes)} sections exceed the EIF limit of {MAX_SECTIONS}")
    offsets = []
    position = HEADER_SIZE
    for size in sizes:
        offsets.append(position)
        position += SECTION_HEADER_SIZE + size
    pad = [0] * (MAX_SECTIONS - len(sizes))

    def header(crc: int) -> bytes:
        return HEADER_STRUCT.pack(
            MAGIC, VERSION, flags, DEFAULT_MEM, DEFAULT_CPUS, 0, len(sizes), *offsets, *pad, *sizes, *pad, 0, crc
        )

    check = hashlib.sha384()
    with atomic_output(output) as out:
        crc = zlib.crc32(header(0)[:CRC_OFFSET])
        out.write(header(0))
        for index, (kind, size) in enumerate(zip(types, sizes, strict=True)):
            section_header = SECTION_HEADER_STRUCT.pack(int(kind), 0, size)
            out.write(section_header)
            crc = zlib.crc32(section_header, crc)
            if kind is SectionType.KERNEL:
                crc = _copy(kernel, out, crc, check, size)
            elif kind is SectionType.CMDLINE:
                out.write(cmdline)
                crc = zlib.crc32(cmdline, crc)
                check.update(cmdline)
            elif kind is SectionType.METADATA:
                out.write(metadata_bytes)
                crc = zlib.crc32(metadata_bytes, crc)
            elif kind is SectionType.RAMDISK:
                crc = _copy(ramdisks[index - 3], out, crc, check, size)
            else:
                assert signature is not None
                out.write(signature)
                crc = zlib.crc32(signature, crc)
        if extend_pcr(check.digest()) != pcr0:
            raise BuildError("EIF_INPUT_CHANGED", "an input file changed while the EIF was being written")
        out.seek(0)
        out.write(header(crc))
    return EifBuildResult(Path(output), pcr0.hex(), position)
