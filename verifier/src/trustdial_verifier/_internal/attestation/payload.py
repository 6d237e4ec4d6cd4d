"""The Nitro attestation payload map: field types and the AWS size rules.

Rules follow AWS ``attestation_process.md`` §3.2.2, widened only where genuine NSM output
differs from the prose: optional fields may be ``null`` (treated as absent), and ``nonce`` /
``user_data`` may hold 0-1024 bytes (the CDDL range; the NSM signs 1024-byte values).
"""

from __future__ import annotations

from dataclasses import dataclass

from trustdial_verifier._internal import strict_cbor
from trustdial_verifier._internal.attestation.envelope import decode_cbor
from trustdial_verifier._internal.attestation.errors import DocumentFormatError
from trustdial_verifier.errors import describe_value

MANDATORY_FIELDS = ("module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle")
OPTIONAL_FIELDS = ("public_key", "user_data", "nonce")
DIGEST_SHA384 = "SHA384"
PCR_INDEX_LIMIT = 32
PCR_VALUE_LENGTHS = (32, 48, 64)
CERTIFICATE_MAX_BYTES = 1024
OPTIONAL_FIELD_MAX_BYTES = 1024
TIMESTAMP_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z, the last instant a datetime can hold
PUBLIC_KEY_MIN_BYTES = 1
USER_DATA_MIN_BYTES = 0
NONCE_MIN_BYTES = 0


@dataclass(frozen=True)
class AttestationPayload:
    """Payload fields after type and size checks; nothing here is authenticated yet."""

    module_id: str
    digest: str
    timestamp_ms: int
    pcrs: dict[int, bytes]
    certificate: bytes
    cabundle: tuple[bytes, ...]
    public_key: bytes | None
    user_data: bytes | None
    nonce: bytes | None


def parse_attestation_payload(payload: bytes) -> AttestationPayload:
    """Decode the payload bytes (definite or indefinite map) and check every field."""
    fields = decode_cbor(payload)
    if not isinstance(fields, dict):
        raise DocumentFormatError("PAYLOAD_FIELD", f"expected the payload to be a map, found {type(fields).__name__}")
    unknown = [key for key in fields if key not in MANDATORY_FIELDS + OPTIONAL_FIELDS]
    if unknown:
        raise DocumentFormatError(
            "PAYLOAD_UNKNOWN_FIELD",
            f"expected only the 9 NSM payload fields, found {len(unknown)} others: "
            + ", ".join(describe_value(key, 40) for key in unknown[:4]),
        )
    missing = [name for name in MANDATORY_FIELDS if fields.get(name) is None]
    if missing:
        raise DocumentFormatError("PAYLOAD_MISSING_FIELD", f"expected mandatory fields {missing} to be present")
    return AttestationPayload(
        module_id=_module_id(fields["module_id"]),
        digest=_digest(fields["digest"]),
        timestamp_ms=_timestamp(fields["timestamp"]),
        pcrs=_pcrs(fields["pcrs"]),
        certificate=_sized_bytes("certificate", fields["certificate"], 1, CERTIFICATE_MAX_BYTES),
        cabundle=_cabundle(fields["cabundle"]),
        public_key=_optional("public_key", fields.get("public_key"), PUBLIC_KEY_MIN_BYTES),
        user_data=_optional("user_data", fields.get("user_data"), USER_DATA_MIN_BYTES),
        nonce=_optional("nonce", fields.get("nonce"), NONCE_MIN_BYTES),
    )


def _module_id(value: strict_cbor.CborValue) -> str:
    if not isinstance(value, str) or not value:
        raise DocumentFormatError(
            "PAYLOAD_FIELD", f"expected module_id as non-empty text, found {describe_value(value)}"
        )
    return value


def _digest(value: strict_cbor.CborValue) -> str:
    if value != DIGEST_SHA384:
        raise DocumentFormatError("PAYLOAD_FIELD", f"expected digest {DIGEST_SHA384!r}, found {describe_value(value)}")
    return DIGEST_SHA384


def _timestamp(value: strict_cbor.CborValue) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= TIMESTAMP_MAX_MS:
        raise DocumentFormatError(
            "PAYLOAD_FIELD",
            f"expected timestamp as milliseconds in 1..{TIMESTAMP_MAX_MS}, found {describe_value(value)}",
        )
    return value


def _pcrs(value: strict_cbor.CborValue) -> dict[int, bytes]:
    if not isinstance(value, dict) or not 1 <= len(value) <= PCR_INDEX_LIMIT:
        raise DocumentFormatError("PAYLOAD_FIELD", f"expected pcrs as a map of 1-{PCR_INDEX_LIMIT} entries")
    pcrs: dict[int, bytes] = {}
    for index, digest in value.items():
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < PCR_INDEX_LIMIT:
            raise DocumentFormatError(
                "PAYLOAD_FIELD", f"expected PCR index 0-{PCR_INDEX_LIMIT - 1}, found {describe_value(index)}"
            )
        if not isinstance(digest, bytes) or len(digest) not in PCR_VALUE_LENGTHS:
            found = f"{len(digest)} bytes" if isinstance(digest, bytes) else type(digest).__name__
            raise DocumentFormatError(
                "PAYLOAD_FIELD", f"expected PCR{index} as bstr of {PCR_VALUE_LENGTHS} bytes, found {found}"
            )
        pcrs[index] = digest
    return pcrs


def _cabundle(value: strict_cbor.CborValue) -> tuple[bytes, ...]:
    if not isinstance(value, list) or not value:
        raise DocumentFormatError("PAYLOAD_FIELD", "expected cabundle as a non-empty array of certificates")
    return tuple(_sized_bytes(f"cabundle[{i}]", item, 1, CERTIFICATE_MAX_BYTES) for i, item in enumerate(value))


def _optional(name: str, value: strict_cbor.CborValue, minimum: int) -> bytes | None:
    if value is None:
        return None
    return _sized_bytes(name, value, minimum, OPTIONAL_FIELD_MAX_BYTES)


def _sized_bytes(name: str, value: strict_cbor.CborValue, minimum: int, maximum: int) -> bytes:
    if not isinstance(value, bytes):
        raise DocumentFormatError("PAYLOAD_FIELD", f"expected {name} as bstr, found {type(value).__name__}")
    if not minimum <= len(value) <= maximum:
        raise DocumentFormatError(
            "PAYLOAD_FIELD", f"expected {name} of {minimum}-{maximum} bytes, found {len(value)} bytes"
        )
    return value
