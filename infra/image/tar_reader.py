"""A strict tar reader (ustar, GNU long names, PAX) that indexes members of a seekable file
without extracting them, keeping names exactly as stored (trailing ``/`` included), as Go's
``archive/tar`` reports them to linuxkit. Anything malformed or unsafe is refused."""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO

from infra.image.errors import BuildError

BLOCK = 512
REGULAR = "0"
HARDLINK = "1"
SYMLINK = "2"
CHAR = "3"
BLOCKDEV = "4"
DIRECTORY = "5"
FIFO = "6"
MEMBER_TYPES = frozenset({REGULAR, HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIRECTORY, FIFO})
MAX_META_SIZE = 1 << 20


@dataclass(frozen=True)
class TarMember:
    name: str
    type: str
    mode: int
    uid: int
    gid: int
    mtime: int
    size: int
    linkname: str
    devmajor: int
    devminor: int
    data_offset: int
    source: int = 0  # which archive holds the data (several when applying image layers)

    @property
    def path(self) -> str:
        """The member's path without a trailing slash (for ordering and lookups)."""
        return self.name.rstrip("/")

    def with_(self, **changes: object) -> TarMember:
        return replace(self, **changes)  # type: ignore[arg-type]


def _malformed(reason: str) -> BuildError:
    return BuildError("TAR_MALFORMED", reason)


def _number(field: bytes, what: str) -> int:
    if field and field[0] & 0x80:
        value = int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
        if field[0] & 0x40:
            value -= 1 << (8 * len(field) - 1)
        return value
    text = field.replace(b"\0", b" ").strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise _malformed(f"header field {what} is not an octal number: {field!r}") from None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", errors="surrogateescape")


def _parse_pax(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            raise _malformed("PAX record without a length")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise _malformed("PAX record length is not a number") from None
        record = data[pos : pos + length]
        if length <= space - pos or len(record) != length or not record.endswith(b"\n"):
            raise _malformed("PAX record length does not match its content")
        key, sep, value = record[space - pos + 1 : -1].partition(b"=")
        if not sep:
            raise _malformed("PAX record without '='")
        records[key.decode("utf-8", errors="surrogateescape")] = value.decode("utf-8", errors="surrogateescape")
        pos += length
    return records


def _read_block(stream: BinaryIO) -> bytes:
    block = stream.read(BLOCK)
    if block and len(block) != BLOCK:
        raise _malformed("archive ends inside a 512-byte header block")
    return block


def _read_payload(stream: BinaryIO, size: int, what: str) -> bytes:
    if size > MAX_META_SIZE:
        raise _malformed(f"{what} of {size} bytes exceeds {MAX_META_SIZE}")
    data = stream.read(size)
    if len(data) != size:
        raise _malformed(f"archive ends inside a {what}")
    stream.seek((-size) % BLOCK, 1)
    return data


def iter_members(stream: BinaryIO, total_size: int) -> Iterator[TarMember]:
    """Yield every member header of the seekable tar ``stream`` (``total_size`` bytes long)."""
    global_pax: dict[str, str] = {}
    pending_pax: dict[str, str] = {}
    long_name: str | None = None
    long_link: str | None = None
    while True:
        start = stream.tell()
        block = _read_block(stream)
        if not block:
            if pending_pax or long_name is not None or long_link is not None:
                raise _malformed("archive ends after an extended header without its member")
            return
        if block == bytes(BLOCK):
            return
        stored = _number(block[148:156], "chksum")
        unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
        signed = sum((b - 256 if b > 127 else b) for b in block[:148] + block[156:]) + 8 * 32
        if stored not in (unsigned, signed):
            raise _malformed(f"header checksum mismatch at offset {start}")
        typeflag = chr(block[156]) if block[156] else REGULAR
        size = _number(block[124:136], "size")
        if size < 0:
            raise _malformed(f"negative size at offset {start}")
        if typeflag in ("x", "g"):
            records = _parse_pax(_read_payload(stream, size, "PAX header"))
            (pending_pax if typeflag == "x" else global_pax).update(records)
            continue
        if typeflag in ("L", "K"):
            value = _text(_read_payload(stream, size, "GNU long name"))
            if typeflag == "L":
                long_name = value
            else:
                long_link = value
            continue
        magic = block[257:265]
        name = _text(block[0:100])
        if magic[:6] == b"ustar\0":
            prefix = _text(block[345:500])
            if prefix:
                name = f"{prefix}/{name}"
        pax = {**global_pax, **pending_pax}
        if long_name is not None:
            name = long_name
        if "path" in pax:
            name = pax["path"]
        linkname = long_link if long_link is not None else _text(block[157:257])
        linkname = pax.get("linkpath", linkname)
        try:
            uid = int(pax["uid"]) if "uid" in pax else _number(block[108:116], "uid")
            gid = int(pax["gid"]) if "gid" in pax else _number(block[116:124], "gid")
            mtime = math.floor(float(pax["mtime"])) if "mtime" in pax else _number(block[136:148], "mtime")
            size = int(pax["size"]) if "size" in pax else size
        except (ValueError, OverflowError):
            raise _malformed(f"PAX uid/gid/mtime/size of {name!r} is not a number") from None
        pending_pax = {}
        long_name = long_link = None
        if typeflag == "7":
            typeflag = REGULAR
        if typeflag not in MEMBER_TYPES:
            raise BuildError("TAR_UNSUPPORTED_MEMBER", f"member {name!r} has tar type {typeflag!r}, not supported")
        data_offset = stream.tell()
        # Go's archive/tar treats these as header-only: any size field is ignored, no data follows.
        data_size = size if typeflag == REGULAR else 0
        if size < 0 or data_offset + data_size > total_size:
            raise _malformed(f"member {name!r} claims {size} bytes past the end of the archive")
        stream.seek(data_size + (-data_size) % BLOCK, 1)
        yield TarMember(
            name=name,
            type=typeflag,
            mode=_number(block[100:108], "mode") & 0o7777,
            uid=uid,
            gid=gid,
            mtime=mtime,
            size=size if typeflag == REGULAR else 0,
            linkname=linkname,
            devmajor=_number(block[329:337], "devmajor") if magic[:5] == b"ustar" else 0,
            devminor=_number(block[337:345], "devminor") if magic[:5] == b"ustar" else 0,
            data_offset=data_offset,
        )


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def check_safe(member: TarMember, known_paths: set[str]) -> None:
    """Refuse absolute names, ``..`` components, and links that leave the root."""
    if member.name.startswith("/") or ".." in member.name.split("/"):
        raise BuildError("TAR_UNSAFE_PATH", f"member name {member.name!r} is absolute or climbs out of the root")
    if not _components(member.name):
        raise BuildError("TAR_UNSAFE_PATH", f"member name {member.name!r} names the root itself")
    if member.type == HARDLINK:
        target = member.linkname
        if target.startswith("/") or ".." in target.split("/"):
            raise BuildError(
                "TAR_UNSAFE_PATH", f"hard link {member.name!r} points outside the root: {member.linkname!r}"
            )
        if "/".join(_components(target)) not in known_paths:
            raise BuildError("TAR_UNSAFE_PATH", f"hard link {member.name!r} targets missing member {target!r}")
    if member.type == SYMLINK and not member.linkname.startswith("/"):
        resolved = posixpath.normpath(posixpath.join("/", posixpath.dirname(member.path), member.linkname))
        depth = 0
        for part in [*_components(posixpath.dirname(member.path)), *member.linkname.split("/")]:
            if part in ("", "."):
                continue
            depth = depth - 1 if part == ".." else depth + 1
            if depth < 0:
                raise BuildError(
                    "TAR_UNSAFE_PATH",
                    f"symlink {member.name!r} -> {member.linkname!r} climbs above the root (resolves to {resolved})",
                )


def walk_key(path: str) -> tuple[bytes, ...]:
    """Docker export order: depth-first, entries of each directory sorted by name bytes."""
    return tuple(part.encode("utf-8", errors="surrogateescape") for part in _components(path))


def _strip_dot_slash(name: str) -> str:
    return name[2:] if name.startswith("./") else name


def _without_root_entry(members: Iterator[TarMember]) -> Iterator[TarMember]:
    """Names as ``docker export`` stores them: a tar made by ``tar -C DIR -c .`` (GNU tar,
    mmdebstrap) holds a ``./`` root entry and ``./``-prefixed names. The root entry carries
    nothing a ramdisk keeps, so it is dropped when it is a directory (once); exactly one leading
    ``./`` is removed from names and hard-link targets. Everything else is left for
    :func:`check_safe`: ``./../x`` becomes ``../x`` and ``.//x`` becomes ``/x``, both refused."""
    root_seen = False
    for m in members:
        if m.name in (".", "./"):
            if m.type != DIRECTORY:
                raise BuildError("TAR_UNSAFE_PATH", f"root entry {m.name!r} is not a directory (tar type {m.type!r})")
            if root_seen:
                raise BuildError("TAR_DUPLICATE_MEMBER", f"root entry {m.name!r} appears twice")
            root_seen = True
            continue
        if m.name.startswith("./"):
            linkname = _strip_dot_slash(m.linkname) if m.type == HARDLINK else m.linkname
            m = m.with_(name=m.name[2:], linkname=linkname)
        yield m


def read_rootfs_members(stream: BinaryIO, total_size: int) -> list[TarMember]:
    """All members of a root filesystem tar, validated, in docker-export walk order (a ``./``
    root entry is accepted, see :func:`_without_root_entry`)."""
    members = list(_without_root_entry(iter_members(stream, total_size)))
    seen: dict[tuple[bytes, ...], str] = {}
    for m in members:
        key = walk_key(m.name)
        if key in seen:
            raise BuildError("TAR_DUPLICATE_MEMBER", f"member {m.name!r} appears twice (also as {seen[key]!r})")
        seen[key] = m.name
    paths = {"/".join(_components(m.name)) for m in members}
    for m in members:
        check_safe(m, paths)
    return sorted(members, key=lambda m: walk_key(m.name))


def read_data(stream: BinaryIO, member: TarMember) -> Iterator[bytes]:
    stream.seek(member.data_offset)
    left = member.size
    while left:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            raise _malformed(f"archive ends inside the data of {member.name!r}")
        left -= len(chunk)
        yield chunk
