"""Certificate path from a trusted root through the document's ``cabundle`` to its leaf.

The path is ``[trusted root, cabundle[1], …, cabundle[-1], certificate]``: the trust anchor is
always the caller's root (by default the pinned AWS root), never ``cabundle[0]``, which must
merely equal it. Every link is checked for issuer/subject names, ECDSA P-384 with SHA-384,
its signature, CA constraints (basicConstraints, keyUsage, pathLen) and validity at the
verification time. CRLs are not consulted (AWS: "We do not use CRL").
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import SignatureAlgorithmOID

from trustdial_verifier._internal.attestation.errors import CertificateChainError

_ECDSA_SHA384 = ec.ECDSA(hashes.SHA384())
_ExtensionT = TypeVar("_ExtensionT", bound=x509.ExtensionType)

_PARSE_ERRORS = (
    ValueError,
    x509.InvalidVersion,
    TypeError,
    UnsupportedAlgorithm,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


@dataclass(frozen=True)
class ValidatedPath:
    """The trusted root and intermediates after every leaf-independent check passed; ``not_before`` and
    ``not_after`` bound the times at which all of them are valid."""

    certificates: tuple[x509.Certificate, ...]
    leaf_issuer_key: ec.EllipticCurvePublicKey
    leaf_issuer_subject: bytes
    not_before: datetime
    not_after: datetime

    def valid_at(self, at: datetime) -> bool:
        return self.not_before <= at <= self.not_after


class IntermediateCache:
    """Remembers certificate paths (trusted root + ``cabundle[1:]``) that already passed every check
    that does not depend on the leaf: names, algorithms, signatures and CA constraints.

    Keyed by the exact DER bytes of the root and intermediates. Validity at the requested time is
    checked on every call (a path outside its window is re-validated from scratch, which reports the
    precise failure), and the leaf is never cached. Safe to share between threads; bounded to
    ``max_entries`` (cleared when full).
    """

    def __init__(self, max_entries: int = 256) -> None:
        self._max_entries = max_entries
        self._paths: dict[tuple[bytes, ...], ValidatedPath] = {}
        self._lock = threading.Lock()

    def lookup(self, key: tuple[bytes, ...]) -> ValidatedPath | None:
        return self._paths.get(key)

    def store(self, key: tuple[bytes, ...], path: ValidatedPath) -> None:
        with self._lock:
            if len(self._paths) >= self._max_entries:
                self._paths.clear()
            self._paths[key] = path


def verify_chain(
    root: x509.Certificate,
    cabundle: tuple[bytes, ...],
    leaf_der: bytes,
    at: datetime,
    cache: IntermediateCache | None = None,
) -> ec.EllipticCurvePublicKey:
    """Validate the path from ``root`` through ``cabundle[1:]`` to the leaf at time ``at``; return the
    leaf's P-384 public key (the key that must have signed the document)."""
    root_der = _der(root)
    if cabundle[0] != root_der:
        raise CertificateChainError(
            "CHAIN_ROOT_MISMATCH",
            f"expected cabundle[0] to be the trusted root {_name(lambda: root.subject)} "
            f"(SHA-256 {hashlib.sha256(root_der).hexdigest()}), found a certificate with SHA-256 "
            f"{hashlib.sha256(cabundle[0]).hexdigest()}",
        )
    key = (root_der, *cabundle[1:])
    path = cache.lookup(key) if cache is not None else None
    if path is None or not path.valid_at(at):
        path = _validate_intermediates(root, cabundle[1:], at)
        if cache is not None:
            cache.store(key, path)
    leaf = _parse(leaf_der)
    label = "leaf certificate"
    _check_link(path.certificates[-1], path.leaf_issuer_subject, path.leaf_issuer_key, leaf, label)
    _check_time(leaf.certificate, at, label)
    return _check_leaf(leaf.certificate)


def _validate_intermediates(root: x509.Certificate, intermediates: tuple[bytes, ...], at: datetime) -> ValidatedPath:
    _check_time(root, at, "trusted root")
    certificates = [root]
    subject = _tbs_names(_tbs(root))[1]
    for position, der in enumerate(intermediates, start=1):
        label = f"cabundle[{position}]"
        parsed = _parse(der)
        issuer = certificates[-1]
        _check_link(issuer, subject, _p384_key(issuer, f"the issuer of {label}"), parsed, label)
        _check_time(parsed.certificate, at, label)
        certificates.append(parsed.certificate)
        subject = parsed.subject
    _check_ca_constraints(certificates)
    last = len(certificates) - 1
    return ValidatedPath(
        tuple(certificates),
        _p384_key(certificates[-1], "trusted root" if last == 0 else f"cabundle[{last}]"),
        subject,
        max(c.not_valid_before_utc for c in certificates),
        min(c.not_valid_after_utc for c in certificates),
    )


@functools.lru_cache(maxsize=16)
def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


@dataclass(frozen=True)
class _ParsedCertificate:
    """A certificate with the DER of its to-be-signed part and of its issuer and subject names."""

    certificate: x509.Certificate
    tbs: bytes
    issuer: bytes
    subject: bytes


def _parse(der: bytes) -> _ParsedCertificate:
    try:
        certificate = x509.load_der_x509_certificate(der)
        # Fields are parsed lazily: touch every one used later so malformed ones fail here, typed.
        # (public_key() is touched where used, with the same error handling.)
        certificate.extensions  # noqa: B018
        certificate.not_valid_before_utc  # noqa: B018
        certificate.not_valid_after_utc  # noqa: B018
        certificate.signature_algorithm_oid  # noqa: B018
        certificate.signature  # noqa: B018
        if certificate.serial_number <= 0:
            raise ValueError(f"serial number must be positive (RFC 5280), found {certificate.serial_number}")
    except _PARSE_ERRORS as err:
        raise CertificateChainError("CERT_MALFORMED", f"expected a DER X.509 v3 certificate: {err}") from None
    tbs = _tbs(certificate)
    issuer, subject = _tbs_names(tbs)
    return _ParsedCertificate(certificate, tbs, issuer, subject)


def _tbs(certificate: x509.Certificate) -> bytes:
    try:
        return certificate.tbs_certificate_bytes
    except _PARSE_ERRORS as err:
        raise CertificateChainError("CERT_MALFORMED", f"expected a DER X.509 v3 certificate: {err}") from None


def _tbs_names(tbs: bytes) -> tuple[bytes, bytes]:
    """The DER of the issuer and subject Names inside a TBSCertificate (RFC 5280 §4.1).

    Names are chained by exact DER equality: stricter than RFC 5280's normalised comparison, and
    what the NSM's chains use (and much cheaper than building Name objects for every document).
    """
    offset = _der_header(tbs, 0)[0]  # into the TBSCertificate SEQUENCE
    fields: list[bytes] = []
    while len(fields) < 6:
        _, end = _der_header(tbs, offset)
        fields.append(tbs[offset:end])
        offset = end
    if fields[0][:1] != b"\xa0":  # version is mandatory for v3 certificates
        raise CertificateChainError("CERT_MALFORMED", "expected an explicit X.509 v3 version field")
    # fields: version, serialNumber, signature, issuer, validity, subject
    return fields[3], fields[5]


def _der_header(data: bytes, offset: int) -> tuple[int, int]:
    """Return (content offset, end offset) of the DER TLV at ``offset``."""
    if offset + 2 > len(data):
        raise CertificateChainError("CERT_MALFORMED", "expected a DER element, found the end of the certificate")
    first = data[offset + 1]
    if first < 0x80:
        content, length = offset + 2, first
    else:
        size = first & 0x7F
        if not 1 <= size <= 4 or offset + 2 + size > len(data):
            raise CertificateChainError("CERT_MALFORMED", "expected a definite DER length in the certificate")
        content, length = offset + 2 + size, int.from_bytes(data[offset + 2 : offset + 2 + size], "big")
    if content + length > len(data):
        raise CertificateChainError("CERT_MALFORMED", "expected a DER element within the certificate")
    return content, content + length


def _check_link(
    issuer: x509.Certificate,
    issuer_subject: bytes,
    issuer_key: ec.EllipticCurvePublicKey,
    parsed: _ParsedCertificate,
    label: str,
) -> None:
    """Name chaining, signature algorithm and signature of one certificate by its issuer."""
    certificate = parsed.certificate
    if parsed.issuer != issuer_subject:
        raise CertificateChainError(
            "CHAIN_NAME",
            f"expected {label} to be issued by {_name(lambda: issuer.subject)}, "
            f"found issuer {_name(lambda: certificate.issuer)}",
        )
    if certificate.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA384:
        raise CertificateChainError(
            "CHAIN_ALGORITHM",
            f"expected {label} signed with ecdsa-with-SHA384, "
            f"found {certificate.signature_algorithm_oid.dotted_string}",
        )
    try:
        issuer_key.verify(certificate.signature, parsed.tbs, _ECDSA_SHA384)
    except InvalidSignature:
        raise CertificateChainError(
            "CHAIN_SIGNATURE", f"expected {label} to carry a valid signature by {_name(lambda: issuer.subject)}"
        ) from None


def _p384_key(certificate: x509.Certificate, label: str) -> ec.EllipticCurvePublicKey:
    try:
        key = certificate.public_key()
    except _PARSE_ERRORS as err:
        raise CertificateChainError("CERT_MALFORMED", f"expected a readable public key in {label}: {err}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise CertificateChainError("CHAIN_ALGORITHM", f"expected a P-384 public key in {label}, found {key!r}")
    return key


def _check_time(certificate: x509.Certificate, at: datetime, label: str) -> None:
    not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if not not_before <= at <= not_after:
        raise CertificateChainError(
            "CERT_TIME",
            f"expected {label} to be valid at {at.isoformat()}, found validity {not_before.isoformat()} "
            f"to {not_after.isoformat()}",
        )


def _check_ca_constraints(certificates: list[x509.Certificate]) -> None:
    """Root and intermediates must be CAs allowed to sign certificates within their pathLen."""
    last_ca = len(certificates) - 1
    for position in range(last_ca + 1):
        certificate = certificates[position]
        label = "trusted root" if position == 0 else f"cabundle[{position}]"
        constraints = _extension(certificate, x509.BasicConstraints)
        if constraints is None or not constraints.value.ca or not constraints.critical:
            raise CertificateChainError(
                "CHAIN_CONSTRAINT", f"expected {label} to have a critical basicConstraints extension with CA=true"
            )
        usage = _extension(certificate, x509.KeyUsage)
        if usage is None or not usage.value.key_cert_sign:
            raise CertificateChainError("CHAIN_CONSTRAINT", f"expected {label} keyUsage to include keyCertSign")
        intermediates_below = last_ca - position
        if constraints.value.path_length is not None and intermediates_below > constraints.value.path_length:
            raise CertificateChainError(
                "CHAIN_CONSTRAINT",
                f"expected at most {constraints.value.path_length} CA certificates below {label} (pathLen), "
                f"found {intermediates_below}",
            )
        _no_unknown_critical(certificate, label)


def _check_leaf(leaf: x509.Certificate) -> ec.EllipticCurvePublicKey:
    constraints = _extension(leaf, x509.BasicConstraints)
    if constraints is not None and constraints.value.ca:
        raise CertificateChainError("CHAIN_CONSTRAINT", "expected the leaf certificate not to be a CA, found CA=true")
    usage = _extension(leaf, x509.KeyUsage)
    if usage is None or not usage.value.digital_signature:
        raise CertificateChainError(
            "CHAIN_CONSTRAINT", "expected the leaf certificate keyUsage to include digitalSignature"
        )
    _no_unknown_critical(leaf, "leaf certificate")
    return _p384_key(leaf, "leaf certificate")


def _extension(certificate: x509.Certificate, kind: type[_ExtensionT]) -> x509.Extension[_ExtensionT] | None:
    try:
        return certificate.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def _no_unknown_critical(certificate: x509.Certificate, label: str) -> None:
    for extension in certificate.extensions:
        if extension.critical and isinstance(extension.value, x509.UnrecognizedExtension):
            raise CertificateChainError(
                "CHAIN_CONSTRAINT", f"expected no unrecognised critical extension in {label}, found {extension.oid}"
            )


def _name(read: Callable[[], x509.Name]) -> str:
    """RFC 4514 text for messages; a malformed name never turns a rejection into a crash."""
    try:
        return read().rfc4514_string()
    except _PARSE_ERRORS:
        return "(unparseable name)"
