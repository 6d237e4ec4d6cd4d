"""A bounded reader for BER/DER TLVs (X.690), enough for CMS as AWS KMS emits it: definite and
indefinite lengths, constructed strings. It never recurses past ``MAX_DEPTH``, refuses tags above
30 (CMS uses none), lengths beyond 4 bytes, and anything left over after the outermost element."""

from __future__ import annotations

from dataclasses import dataclass

from enclave_app.sealed.errors import SealedModelError

MAX_DEPTH = 24
UNIVERSAL, APPLICATION, CONTEXT, PRIVATE = 0, 1, 2, 3
INTEGER, OCTET_STRING, NULL, OID, SEQUENCE, SET = 2, 4, 5, 6, 16, 17


@dataclass(frozen=True)
class Tlv:
    """One element: its class, constructed bit, tag number, and either ``value`` (primitive) or ``children``."""

    tag_class: int
    constructed: bool
    number: int
    value: bytes
    children: tuple[Tlv, ...]

    def is_universal(self, number: int) -> bool:
        return self.tag_class == UNIVERSAL and self.number == number

    def is_context(self, number: int) -> bool:
        return self.tag_class == CONTEXT and self.number == number


def _malformed(reason: str) -> SealedModelError:
    return SealedModelError("CMS_MALFORMED", reason)


def parse(data: bytes) -> Tlv:
    """The single element ``data`` holds (trailing bytes are refused)."""
    element, end = _element(data, 0, 0)
    if end != len(data):
        raise _malformed(f"{len(data) - end} bytes follow the outermost element")
    return element


def _element(data: bytes, offset: int, depth: int) -> tuple[Tlv, int]:
    if depth > MAX_DEPTH:
        raise _malformed(f"nesting deeper than {MAX_DEPTH}")
    if offset >= len(data):
        raise _malformed("truncated before a tag")
    first = data[offset]
    tag_class, constructed, number = first >> 6, bool(first & 0x20), first & 0x1F
    if number == 0x1F:
        raise _malformed("high tag numbers are not used by CMS")
    offset += 1
    if offset >= len(data):
        raise _malformed("truncated before a length")
    length_byte = data[offset]
    offset += 1
    if length_byte == 0x80:
        if not constructed:
            raise _malformed("indefinite length on a primitive element")
        children: list[Tlv] = []
        while True:
            if data[offset : offset + 2] == b"\x00\x00":
                return Tlv(tag_class, True, number, b"", tuple(children)), offset + 2
            child, offset = _element(data, offset, depth + 1)
            children.append(child)
    if length_byte & 0x80:
        count = length_byte & 0x7F
        if count > 4 or count == 0x7F:
            raise _malformed(f"a {count}-byte length field")
        if offset + count > len(data):
            raise _malformed("truncated inside a length")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    else:
        length = length_byte
    end = offset + length
    if end > len(data):
        raise _malformed(f"an element of {length} bytes runs past the end of the input")
    if not constructed:
        if tag_class == UNIVERSAL and number == 0 and length == 0:
            raise _malformed("an end-of-contents marker outside an indefinite-length element")
        return Tlv(tag_class, False, number, data[offset:end], ()), end
    children = []
    inner = data[:end]
    while offset < end:
        child, offset = _element(inner, offset, depth + 1)
        children.append(child)
    return Tlv(tag_class, True, number, b"", tuple(children)), end


def octets(element: Tlv, depth: int = 0) -> bytes:
    """The bytes of an OCTET STRING (or an IMPLICIT one), joining the segments of a constructed encoding."""
    if not element.constructed:
        return element.value
    if depth > MAX_DEPTH:
        raise _malformed("constructed string nested too deep")
    parts = []
    for child in element.children:
        if not child.is_universal(OCTET_STRING):
            raise _malformed("a constructed string segment that is not an OCTET STRING")
        parts.append(octets(child, depth + 1))
    return b"".join(parts)


def small_integer(element: Tlv) -> int:
    if not element.is_universal(INTEGER) or element.constructed or not 1 <= len(element.value) <= 4:
        raise _malformed("expected a small INTEGER")
    return int.from_bytes(element.value, "big", signed=True)


def encode_oid(dotted: str) -> bytes:
    """The content octets of an OBJECT IDENTIFIER (for comparing against parsed values)."""
    parts = [int(p) for p in dotted.split(".")]
    body = [40 * parts[0] + parts[1], *parts[2:]]
    out = bytearray()
    for arc in body:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return bytes(out)
