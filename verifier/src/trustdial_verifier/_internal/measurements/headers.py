"""The COSE headers of a signed manifest (RFC 9052 §3), checked before the signature is.

Protected header: strict CBOR map (no duplicate labels, labels are integers or text) with ``alg`` (1) = ES384;
``crit`` (2), when present, a non-empty array of labels that are all present in the protected header and all
understood here (:data:`UNDERSTOOD_CRITICAL`); content type (3), when present, exactly :data:`CONTENT_TYPE`.
Other protected labels are integrity-protected but carry nothing this verifier acts on: they are ignored, as RFC
9052 §3.1 allows for labels not listed in ``crit``. Unprotected header: informational only (e.g. ``kid``), but it may
not repeat a protected label, may not carry ``crit``, and a content type there must also be :data:`CONTENT_TYPE`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trustdial_verifier._internal import cose_sign1, strict_cbor
from trustdial_verifier._internal.cose_sign1 import ALG_ES384, HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_CRIT, CoseError
from trustdial_verifier._internal.measurements.errors import ManifestError
from trustdial_verifier.errors import describe_value

ES384 = ALG_ES384
CONTENT_TYPE = "application/trustdial.measurements+json"
#: Labels a signer may mark critical: the ones whose meaning this verifier enforces.
UNDERSTOOD_CRITICAL = frozenset({HEADER_ALG, HEADER_CONTENT_TYPE})


def check_headers(protected: bytes, unprotected: Mapping[Any, Any]) -> None:
    """Raise :class:`ManifestError` unless the headers are ones this verifier fully understands (see module doc)."""
    header = decode_protected(protected)
    if header.get(HEADER_ALG) != ES384:
        raise ManifestError(
            "MANIFEST_BAD_ALGORITHM",
            f"expected alg ES384 (-35) in the protected header, found {describe_value(header.get(1))}",
        )
    if HEADER_CRIT in header:
        _check_critical(header[HEADER_CRIT], header)
    shared = [label for label in unprotected if label in header]
    if shared:
        raise ManifestError(
            "MANIFEST_BAD_ENVELOPE",
            f"expected each header label in one bucket only, found {describe_value(shared)} in both",
        )
    if HEADER_CRIT in unprotected:
        raise ManifestError(
            "MANIFEST_BAD_ENVELOPE", "expected crit (2) only in the protected header, found unprotected"
        )
    for bucket, labels in (("protected", header), ("unprotected", unprotected)):
        if HEADER_CONTENT_TYPE in labels and labels[HEADER_CONTENT_TYPE] != CONTENT_TYPE:
            raise ManifestError(
                "MANIFEST_BAD_CONTENT_TYPE",
                f"expected content type {CONTENT_TYPE!r} in the {bucket} header, "
                f"found {describe_value(labels[HEADER_CONTENT_TYPE])}",
            )


def decode_protected(protected: bytes) -> dict[strict_cbor.CborKey, strict_cbor.CborValue]:
    """The protected header map; a zero-length byte string is the empty map (RFC 9052 §3)."""
    try:
        return cose_sign1.decode_protected_header(protected)
    except CoseError as err:
        if err.code == "COSE_HEADER":
            raise ManifestError(
                "MANIFEST_BAD_ALGORITHM", f"expected a protected header map with alg ES384 (-35): {err.reason}"
            ) from None
        raise ManifestError("MANIFEST_BAD_ENVELOPE", f"protected header: {err.reason} ({err.code})") from None


def _check_critical(crit: object, header: Mapping[Any, Any]) -> None:
    if not isinstance(crit, list) or not crit:
        raise ManifestError(
            "MANIFEST_BAD_ENVELOPE", f"expected crit (2) to be a non-empty array, found {describe_value(crit)}"
        )
    for label in crit:
        if not isinstance(label, int | str) or isinstance(label, bool):
            raise ManifestError(
                "MANIFEST_BAD_ENVELOPE", f"expected crit labels to be integers or text, found {describe_value(label)}"
            )
        if label not in header:
            raise ManifestError(
                "MANIFEST_BAD_ENVELOPE",
                f"crit lists label {describe_value(label)}, which the protected header does not carry",
            )
        if label not in UNDERSTOOD_CRITICAL:
            raise ManifestError(
                "MANIFEST_UNKNOWN_CRITICAL",
                f"expected critical labels among {sorted(UNDERSTOOD_CRITICAL)} (alg, content type), "
                f"found {describe_value(label)} which this verifier does not understand",
            )
