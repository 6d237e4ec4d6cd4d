"""A strict, bounded CBOR (RFC 8949) reader for evidence from untrusted sources.

Only what signed evidence needs: integers, byte and text strings of definite length,
arrays and maps of definite or indefinite length, tags, ``false``/``true``/``null``.
Everything else (floats, ``undefined``, other simple values, chunked strings) is refused,
and so are duplicate map keys, trailing bytes, nesting deeper than :data:`MAX_DEPTH`
and more than :data:`MAX_ITEMS` data items. Byte strings are returned exactly as they
appear on the wire, so a signature can be checked over the received bytes without ever
re-encoding anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from verifier.errors import VerificationError

MAX_DEPTH = 16
MAX_ITEMS = 4096

MAJOR_UNSIGNED = 0
MAJOR_NEGATIVE = 1
MAJOR_BYTES = 2
MAJOR_TEXT = 3
MAJOR_ARRAY = 4
MAJOR_MAP = 5
MAJOR_TAG = 6
MAJOR_SIMPLE = 7

INFO_INDEFINITE = 31
SIMPLE_FALSE = 20
SIMPLE_TRUE = 21
SIMPLE_NULL = 22


class CborError(VerificationError):
    """The bytes are not CBOR this reader accepts. Codes: ``CBOR_MALFORMED``,
    ``CBOR_UNSUPPORTED``, ``CBOR_DUPLICATE_KEY``, ``CBOR_TRAILING_BYTES``, ``CBOR_TOO_DEEP``."""


@dataclass(frozen=True)
class CborTag:
    """A tagged data item (major type 6)."""

    tag: int
    value: CborValue


CborKey: TypeAlias = int | bytes | str
CborValue: TypeAlias = int | bytes | str | bool | list["CborValue"] | dict[CborKey, "CborValue"] | CborTag | None


def decode(data: bytes) -> CborValue:
    """Decode exactly one data item that spans all of ``data``; raise :class:`CborError` otherwise."""
    reader = _Reader(data)
    value = reader.item(depth=0)
    if reader.offset != len(data):
        raise CborError(
            "CBOR_TRAILING_BYTES",
            f"expected one CBOR data item spanning all {len(data)} bytes, found {len(data) - reader.offset} "
            f"trailing bytes after offset {reader.offset}",
        )
    return value


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0
        self.items = 0

    def take(self, count: int) -> bytes:
        end = self.offset + count
        if end > len(self.data):
            raise CborError(
                "CBOR_MALFORMED",
                f"expected {count} more bytes at offset {self.offset}, found only {len(self.data) - self.offset}",
            )
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def item(self, depth: int) -> CborValue:
        if depth > MAX_DEPTH:
            raise CborError("CBOR_TOO_DEEP", f"expected nesting of at most {MAX_DEPTH} levels, found deeper")
        self.items += 1
        if self.items > MAX_ITEMS:
            raise CborError("CBOR_TOO_DEEP", f"expected at most {MAX_ITEMS} data items, found more")
        data, start = self.data, self.offset
        if start >= len(data):
            raise CborError("CBOR_MALFORMED", f"expected a data item at offset {start}, found the end of input")
        major, info = data[start] >> 5, data[start] & 0x1F
        self.offset = start + 1
        argument: int | None
        if info < 24:
            argument = info
        elif info <= 27:
            argument = int.from_bytes(self.take(1 << (info - 24)), "big")
        elif info == INFO_INDEFINITE:
            argument = None
        else:
            raise CborError("CBOR_MALFORMED", f"reserved additional information {info} at offset {start}")
        if major == MAJOR_BYTES or major == MAJOR_TEXT:
            length = self._definite(argument, major, start)
            end = self.offset + length
            if end > len(self.data):
                raise CborError(
                    "CBOR_MALFORMED",
                    f"expected {length} bytes of string at offset {self.offset}, found only "
                    f"{len(self.data) - self.offset}",
                )
            raw = self.data[self.offset : end]
            self.offset = end
            if major == MAJOR_BYTES:
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise CborError("CBOR_MALFORMED", f"text string at offset {start} is not UTF-8: {err}") from None
        if major == MAJOR_UNSIGNED:
            return self._definite(argument, major, start)
        if major == MAJOR_NEGATIVE:
            return -1 - self._definite(argument, major, start)
        if major == MAJOR_ARRAY:
            return self._array(argument, depth)
        if major == MAJOR_MAP:
            return self._map(argument, depth, start)
        if major == MAJOR_TAG:
            tag = self._definite(argument, major, start)
            return CborTag(tag, self.item(depth + 1))
        return self._simple(info, start)

    def _definite(self, argument: int | None, major: int, start: int) -> int:
        if argument is None:
            what = "chunked (indefinite-length) string" if major in (MAJOR_BYTES, MAJOR_TEXT) else "indefinite length"
            raise CborError("CBOR_UNSUPPORTED", f"{what} with major type {major} at offset {start} is not accepted")
        return argument

    def _at_break(self) -> bool:
        if self.offset >= len(self.data):
            raise CborError("CBOR_MALFORMED", "indefinite-length container is not closed by a break byte")
        if self.data[self.offset] == 0xFF:
            self.offset += 1
            return True
        return False

    def _array(self, argument: int | None, depth: int) -> list[CborValue]:
        values: list[CborValue] = []
        if argument is None:
            while not self._at_break():
                values.append(self.item(depth + 1))
            return values
        self._plausible_count(argument, 1)
        for _ in range(argument):
            values.append(self.item(depth + 1))
        return values

    def _map(self, argument: int | None, depth: int, start: int) -> dict[CborKey, CborValue]:
        entries: dict[CborKey, CborValue] = {}
        if argument is not None:
            self._plausible_count(argument, 2)
        index = 0
        while (not self._at_break()) if argument is None else index < argument:
            key_offset = self.offset
            key = self.item(depth + 1)
            if not isinstance(key, int | bytes | str) or isinstance(key, bool):
                raise CborError("CBOR_UNSUPPORTED", f"map key at offset {key_offset} must be an integer or string")
            if key in entries:
                raise CborError(
                    "CBOR_DUPLICATE_KEY", f"expected unique keys in the map at offset {start}, found {key!r} twice"
                )
            entries[key] = self.item(depth + 1)
            index += 1
        return entries

    def _plausible_count(self, count: int, min_bytes_each: int) -> None:
        if count * min_bytes_each > len(self.data) - self.offset:
            raise CborError(
                "CBOR_MALFORMED",
                f"container declares {count} elements but only {len(self.data) - self.offset} bytes remain",
            )

    def _simple(self, info: int, start: int) -> CborValue:
        if info == SIMPLE_FALSE:
            return False
        if info == SIMPLE_TRUE:
            return True
        if info == SIMPLE_NULL:
            return None
        if info == INFO_INDEFINITE:
            raise CborError("CBOR_MALFORMED", f"unexpected break byte at offset {start}")
        raise CborError("CBOR_UNSUPPORTED", f"simple value or float (additional information {info}) at offset {start}")
