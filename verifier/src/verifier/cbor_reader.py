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
BREAK = 0xFF
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
    end_of_input = len(data)
    offset = 0
    items = 0

    def truncated(needed: int) -> CborError:
        return CborError(
            "CBOR_MALFORMED", f"expected {needed} more bytes at offset {offset}, found only {end_of_input - offset}"
        )

    def item(depth: int) -> CborValue:
        # One function with local state: this runs for every data item of every document.
        nonlocal offset, items
        if depth > MAX_DEPTH:
            raise CborError("CBOR_TOO_DEEP", f"expected nesting of at most {MAX_DEPTH} levels, found deeper")
        items += 1
        if items > MAX_ITEMS:
            raise CborError("CBOR_TOO_DEEP", f"expected at most {MAX_ITEMS} data items, found more")
        start = offset
        if start >= end_of_input:
            raise CborError("CBOR_MALFORMED", f"expected a data item at offset {start}, found the end of input")
        initial = data[start]
        major, info = initial >> 5, initial & 0x1F
        offset = start + 1
        argument: int | None
        if info < 24:
            argument = info
        elif info <= 27:
            size = 1 << (info - 24)
            if offset + size > end_of_input:
                raise truncated(size)
            argument = int.from_bytes(data[offset : offset + size], "big")
            offset += size
        elif info == INFO_INDEFINITE:
            argument = None
        else:
            raise CborError("CBOR_MALFORMED", f"reserved additional information {info} at offset {start}")

        if major == MAJOR_BYTES or major == MAJOR_TEXT:
            if argument is None:
                raise CborError(
                    "CBOR_UNSUPPORTED", f"chunked (indefinite-length) string at offset {start} is not accepted"
                )
            if offset + argument > end_of_input:
                raise truncated(argument)
            raw = data[offset : offset + argument]
            offset += argument
            if major == MAJOR_BYTES:
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise CborError("CBOR_MALFORMED", f"text string at offset {start} is not UTF-8: {err}") from None
        if major == MAJOR_MAP:
            entries: dict[CborKey, CborValue] = {}
            if argument is not None and argument * 2 > end_of_input - offset:
                raise CborError(
                    "CBOR_MALFORMED", f"map at offset {start} declares {argument} entries but too few bytes remain"
                )
            remaining = argument
            while True:
                if remaining is None:
                    if offset >= end_of_input:
                        raise CborError("CBOR_MALFORMED", "indefinite-length map is not closed by a break byte")
                    if data[offset] == BREAK:
                        offset += 1
                        break
                elif remaining == 0:
                    break
                else:
                    remaining -= 1
                key_offset = offset
                key = item(depth + 1)
                if not isinstance(key, int | bytes | str) or isinstance(key, bool):
                    raise CborError("CBOR_UNSUPPORTED", f"map key at offset {key_offset} must be an integer or string")
                if key in entries:
                    raise CborError(
                        "CBOR_DUPLICATE_KEY", f"expected unique keys in the map at offset {start}, found {key!r} twice"
                    )
                entries[key] = item(depth + 1)
            return entries
        if major == MAJOR_ARRAY:
            values: list[CborValue] = []
            if argument is None:
                while True:
                    if offset >= end_of_input:
                        raise CborError("CBOR_MALFORMED", "indefinite-length array is not closed by a break byte")
                    if data[offset] == BREAK:
                        offset += 1
                        return values
                    values.append(item(depth + 1))
            if argument > end_of_input - offset:
                raise CborError(
                    "CBOR_MALFORMED", f"array at offset {start} declares {argument} elements but too few bytes remain"
                )
            for _ in range(argument):
                values.append(item(depth + 1))
            return values
        if major == MAJOR_SIMPLE:
            if info == SIMPLE_FALSE:
                return False
            if info == SIMPLE_TRUE:
                return True
            if info == SIMPLE_NULL:
                return None
            if info == INFO_INDEFINITE:
                raise CborError("CBOR_MALFORMED", f"unexpected break byte at offset {start}")
            raise CborError(
                "CBOR_UNSUPPORTED", f"simple value or float (additional information {info}) at offset {start}"
            )
        if argument is None:
            raise CborError("CBOR_UNSUPPORTED", f"indefinite length with major type {major} at offset {start}")
        if major == MAJOR_UNSIGNED:
            return argument
        if major == MAJOR_NEGATIVE:
            return -1 - argument
        return CborTag(argument, item(depth + 1))  # MAJOR_TAG

    value = item(0)
    if offset != end_of_input:
        raise CborError(
            "CBOR_TRAILING_BYTES",
            f"expected one CBOR data item spanning all {end_of_input} bytes, found {end_of_input - offset} "
            f"trailing bytes after offset {offset}",
        )
    return value
