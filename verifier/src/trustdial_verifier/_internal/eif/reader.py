"""One streaming pass over an EIF: validate the layout, check the CRC, compute PCRs.

Memory stays bounded whatever the file size: measured sections are hashed chunk by chunk;
only the cmdline, metadata and signature sections (capped at 1 MiB each) are held whole.

PCR contents (section data only, file order): PCR0 = kernel ‖ cmdline ‖ ramdisk₀ ‖ … ‖ ramdiskₙ,
PCR1 = kernel ‖ cmdline ‖ ramdisk₀, PCR2 = ramdisk₁ ‖ … ‖ ramdiskₙ, PCR8 = DER of the signing
certificate. PCR1's content is a prefix of PCR0's, so a single SHA-384 state serves both (its
state is copied at the end of ramdisk₀): kernel, cmdline and ramdisk₀ are hashed once, the later
ramdisks twice (PCR0 and PCR2), which is the least the definitions allow.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from trustdial_verifier._internal import strict_json
from trustdial_verifier._internal.eif.errors import EifError
from trustdial_verifier._internal.eif.format import (
    CRC_OFFSET,
    HEADER_SIZE,
    HEADER_STRUCT,
    KNOWN_FLAGS,
    MAGIC,
    MAX_SECTIONS,
    SECTION_HEADER_SIZE,
    SECTION_HEADER_STRUCT,
    SUPPORTED_VERSIONS,
    SectionType,
    arch_from_flags,
)
from trustdial_verifier._internal.eif.pcr import pcr_from_digest
from trustdial_verifier._internal.eif.signature import EifSignature, verify_signature_section

CHUNK_SIZE = 1 << 20
MAX_HELD_SECTION = 1 << 20
HELD_SECTIONS = frozenset({SectionType.CMDLINE, SectionType.METADATA, SectionType.SIGNATURE})


@dataclass(frozen=True)
class SectionInfo:
    """One section of an EIF as read: its position in the file, type, name, offset and size."""

    index: int
    type: int
    name: str
    offset: int
    size: int

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "type": self.name, "offset": self.offset, "size": self.size}


@dataclass(frozen=True)
class EifMeasurement:
    """What an EIF measures to: PCR0/1/2 (hex SHA-384), PCR8 when signed, and the file's layout and digests."""

    pcr0: str
    pcr1: str
    pcr2: str
    pcr8: str | None
    size: int
    version: int
    arch: str
    crc32: int
    cmdline: str
    sections: tuple[SectionInfo, ...]
    metadata: dict[str, Any]
    signature: EifSignature | None = None
    sha256: str | None = None
    sha384: str | None = None

    def pcrs(self) -> dict[str, str | None]:
        return {"PCR0": self.pcr0, "PCR1": self.pcr1, "PCR2": self.pcr2, "PCR8": self.pcr8}

    def as_dict(self) -> dict[str, Any]:
        """The ``trustdial-verify eif --json`` fields."""
        return {
            **self.pcrs(),
            "sha256": self.sha256,
            "sha384": self.sha384,
            "size": self.size,
            "arch": self.arch,
            "version": self.version,
            "crc32": f"{self.crc32:08x}",
            "cmdline": self.cmdline,
            "sections": [s.as_dict() for s in self.sections],
            "metadata": self.metadata,
            "signing_certificate_subject": self.signature.subject if self.signature else None,
        }


@dataclass
class _Walk:
    crc: int
    file_hashes: list[Any]
    remaining: int | None
    image: Any = field(default_factory=hashlib.sha384)
    bootstrap_digest: bytes | None = None
    app: Any = field(default_factory=hashlib.sha384)
    ramdisks: int = 0


def _read_fully(stream: IO[bytes], count: int, name: str) -> bytes:
    parts: list[bytes] = []
    left = count
    while left:
        part = stream.read(left)
        if not part:
            raise EifError("EIF_TRUNCATED", f"file ends inside the {name} section: {left} of {count} bytes missing")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _feed(walk: _Walk, data: bytes | memoryview, *, crc: bool = True) -> None:
    if crc:
        walk.crc = zlib.crc32(data, walk.crc)
    for h in walk.file_hashes:
        h.update(data)


def _stream_section(
    stream: IO[bytes], walk: _Walk, size: int, targets: list[Any], name: str, pool: ThreadPoolExecutor
) -> None:
    """Hash one section's data. For large sections the work is split over two threads (hashlib and
    zlib release the GIL on large buffers): this thread feeds ``targets[0]`` and the file SHA-384,
    a helper thread the CRC, the file SHA-256 and the other targets, chunk by chunk."""
    buffer = bytearray(min(CHUNK_SIZE, max(size, 1)))
    view = memoryview(buffer)
    main = [targets[0], *walk.file_hashes[1:]]
    side = [*walk.file_hashes[:1], *targets[1:]]
    crc_on_side = len(targets) == 1  # balance: the CRC goes with whichever thread hashes less

    def side_work(chunk: memoryview, crc: int) -> int:
        for h in side:
            h.update(chunk)
        return zlib.crc32(chunk, crc) if crc_on_side else crc

    parallel = size >= 2 * CHUNK_SIZE
    left = size
    while left:
        want = min(left, len(buffer))
        got = stream.readinto(view[:want])  # type: ignore[attr-defined]
        if not got:
            raise EifError("EIF_TRUNCATED", f"file ends inside the {name} section: {left} of {size} bytes missing")
        chunk = view[:got]
        pending = pool.submit(side_work, chunk, walk.crc) if parallel else None
        for h in main:
            h.update(chunk)
        crc = pending.result() if pending is not None else side_work(chunk, walk.crc)
        walk.crc = crc if crc_on_side else zlib.crc32(chunk, crc)
        left -= got


def _parse_metadata(data: bytes) -> dict[str, Any]:
    try:
        value = strict_json.loads(data, max_bytes=MAX_HELD_SECTION)
    except strict_json.JsonError as err:
        raise EifError(
            "EIF_BAD_METADATA", f"metadata section is not strict UTF-8 JSON: {err.reason} ({err.code})"
        ) from None
    if not isinstance(value, dict):
        raise EifError("EIF_BAD_METADATA", f"metadata section must be a JSON object, found {type(value).__name__}")
    return value


def measure_eif_stream(
    stream: IO[bytes], *, total_size: int | None = None, file_digests: bool = True
) -> EifMeasurement:
    """Validate and measure the EIF read from ``stream`` (positioned at its start).

    ``total_size`` (when known) lets a section claiming more bytes than the file holds be
    refused before anything is read; without it the walk refuses at the point the data ends.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="eif-hash") as pool:
        return _measure(stream, total_size, file_digests, pool)


def _measure(stream: IO[bytes], total_size: int | None, file_digests: bool, pool: ThreadPoolExecutor) -> EifMeasurement:
    header = stream.read(HEADER_SIZE)
    if len(header) < HEADER_SIZE:
        if header[:4] != MAGIC[: len(header[:4])]:
            raise EifError("EIF_BAD_MAGIC", f"expected magic {MAGIC!r}, found {header[:4]!r}")
        raise EifError("EIF_TRUNCATED", f"an EIF header is {HEADER_SIZE} bytes, the file has {len(header)}")
    fields = HEADER_STRUCT.unpack(header)
    magic, version, flags, _mem, _cpus, _reserved, num_sections = fields[:7]
    table_offsets = fields[7:39]
    table_sizes = fields[39:71]
    stored_crc = fields[72]
    if magic != MAGIC:
        raise EifError("EIF_BAD_MAGIC", f"expected magic {MAGIC!r}, found {magic!r}")
    if version not in SUPPORTED_VERSIONS:
        raise EifError("EIF_UNSUPPORTED_VERSION", f"expected EIF version 4, found {version}")
    if flags & ~KNOWN_FLAGS:
        raise EifError("EIF_BAD_FLAGS", f"header flags {flags:#06x} set bits other than bit 0 (aarch64)")
    if not 1 <= num_sections <= MAX_SECTIONS:
        raise EifError("EIF_BAD_SECTION_COUNT", f"header claims {num_sections} sections, expected 1..{MAX_SECTIONS}")

    hashes = [hashlib.sha256(), hashlib.sha384()] if file_digests else []
    walk = _Walk(crc=zlib.crc32(header[:CRC_OFFSET]), file_hashes=hashes, remaining=None)
    for h in hashes:
        h.update(header)
    offset = HEADER_SIZE
    sections: list[SectionInfo] = []
    held: dict[int, bytes] = {}
    while True:
        raw = stream.read(SECTION_HEADER_SIZE)
        if not raw:
            break
        if len(raw) < SECTION_HEADER_SIZE:
            raise EifError("EIF_TRUNCATED", f"file ends inside a section header at offset {offset}")
        _feed(walk, raw)
        section_type, section_flags, size = SECTION_HEADER_STRUCT.unpack(raw)
        index = len(sections)
        if index >= MAX_SECTIONS:
            raise EifError("EIF_BAD_SECTION_COUNT", f"more than {MAX_SECTIONS} sections in the file")
        try:
            kind = SectionType(section_type)
        except ValueError:
            raise EifError(
                "EIF_UNKNOWN_SECTION_TYPE", f"section {index} at offset {offset} has type {section_type}, expected 1..5"
            ) from None
        if section_flags:
            raise EifError("EIF_BAD_SECTION_FLAGS", f"section {index} has flags {section_flags:#06x}, expected 0")
        data_start = offset + SECTION_HEADER_SIZE
        if total_size is not None and size > total_size - data_start:
            raise EifError(
                "EIF_SECTION_PAST_EOF",
                f"section {index} ({kind.label}) claims {size} bytes from offset {data_start}, "
                f"but the file ends at {total_size}",
            )
        if kind in HELD_SECTIONS:
            if any(SectionType(s.type) is kind for s in sections):
                raise EifError("EIF_SECTION_DUPLICATE", f"a second {kind.label} section at offset {offset}")
            if size > MAX_HELD_SECTION:
                raise EifError(
                    "EIF_SECTION_TOO_LARGE", f"{kind.label} section claims {size} bytes, limit {MAX_HELD_SECTION}"
                )
            data = _read_fully(stream, size, kind.label)
            _feed(walk, data)
            if kind is SectionType.CMDLINE:
                walk.image.update(data)
            held[index] = data
        else:
            if kind is SectionType.RAMDISK:
                if walk.ramdisks == 1:
                    walk.bootstrap_digest = walk.image.copy().digest()
                targets = [walk.image] if walk.ramdisks == 0 else [walk.image, walk.app]
                walk.ramdisks += 1
            else:
                targets = [walk.image]
            _stream_section(stream, walk, size, targets, kind.label, pool)
        sections.append(SectionInfo(index, int(kind), kind.label, offset, size))
        offset = data_start + size
        if kind in (SectionType.KERNEL, SectionType.CMDLINE) and walk.ramdisks:
            raise EifError("EIF_SECTION_ORDER", f"{kind.label} section {index} follows a ramdisk section")

    _check_structure(sections, num_sections, table_offsets, table_sizes)
    if walk.crc != stored_crc:
        raise EifError("EIF_BAD_CRC", f"header CRC32 is {stored_crc:08x}, the file's bytes give {walk.crc:08x}")
    bootstrap_digest = walk.bootstrap_digest if walk.bootstrap_digest is not None else walk.image.copy().digest()
    pcr0 = pcr_from_digest(walk.image.digest())
    by_kind = {SectionType(s.type): s.index for s in sections}
    metadata = _parse_metadata(held[by_kind[SectionType.METADATA]])
    signature = None
    if SectionType.SIGNATURE in by_kind:
        signature = verify_signature_section(held[by_kind[SectionType.SIGNATURE]], pcr0)
    return EifMeasurement(
        pcr0=pcr0,
        pcr1=pcr_from_digest(bootstrap_digest),
        pcr2=pcr_from_digest(walk.app.digest()),
        pcr8=signature.pcr8 if signature else None,
        size=offset,
        version=version,
        arch=arch_from_flags(flags),
        crc32=stored_crc,
        cmdline=held[by_kind[SectionType.CMDLINE]].decode("utf-8", errors="replace"),
        sections=tuple(sections),
        metadata=metadata,
        signature=signature,
        sha256=hashes[0].hexdigest() if hashes else None,
        sha384=hashes[1].hexdigest() if hashes else None,
    )


def _check_structure(
    sections: list[SectionInfo], num_sections: int, offsets: tuple[int, ...], sizes: tuple[int, ...]
) -> None:
    counts = Counter(SectionType(s.type) for s in sections)
    for kind in (SectionType.KERNEL, SectionType.CMDLINE, SectionType.METADATA, SectionType.SIGNATURE):
        if counts[kind] > 1:
            raise EifError("EIF_SECTION_DUPLICATE", f"{counts[kind]} {kind.label} sections, at most one allowed")
    for kind in (SectionType.KERNEL, SectionType.CMDLINE, SectionType.METADATA, SectionType.RAMDISK):
        if counts[kind] == 0:
            raise EifError("EIF_SECTION_MISSING", f"no {kind.label} section; an EIF v4 needs one")
    if len(sections) != num_sections:
        raise EifError(
            "EIF_HEADER_TABLE_MISMATCH", f"header claims {num_sections} sections, the file holds {len(sections)}"
        )
    for s in sections:
        if offsets[s.index] != s.offset or sizes[s.index] != s.size:
            raise EifError(
                "EIF_HEADER_TABLE_MISMATCH",
                f"header table says section {s.index} is at {offsets[s.index]} with {sizes[s.index]} bytes; "
                f"it is at {s.offset} with {s.size} bytes",
            )
    if any(offsets[len(sections) :]) or any(sizes[len(sections) :]):
        raise EifError("EIF_HEADER_TABLE_MISMATCH", "header table has entries beyond the last section")


def measure_eif(path: str | os.PathLike[str], *, file_digests: bool = True) -> EifMeasurement:
    """Validate and measure the EIF file at ``path``."""
    with Path(path).open("rb", buffering=0) as stream:
        total = os.fstat(stream.fileno()).st_size
        return measure_eif_stream(stream, total_size=total, file_digests=file_digests)
