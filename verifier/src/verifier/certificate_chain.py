"""Certificate path from a trusted root through the document's ``cabundle`` to its leaf.

The path is ``[trusted root, cabundle[1], …, cabundle[-1], certificate]``: the trust anchor is
always the caller's root (by default the pinned AWS root), never ``cabundle[0]``, which must
merely equal it. Every link is checked for issuer/subject names, ECDSA P-384 with SHA-384,
its signature, CA constraints (basicConstraints, keyUsage, pathLen) and validity at the
verification time. CRLs are not consulted (AWS: "We do not use CRL").
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import SignatureAlgorithmOID

from verifier.attestation_errors import CertificateChainError

_ExtensionT = TypeVar("_ExtensionT", bound=x509.ExtensionType)

_PARSE_ERRORS = (
    ValueError,
    x509.InvalidVersion,
    TypeError,
    UnsupportedAlgorithm,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


class IntermediateCache:
    """Remembers intermediate certificates whose signature by a given issuer already verified.

    Keyed by the SHA-256 of the issuer's and the certificate's DER. A hit skips only the
    signature verification of that link: names, constraints and validity at the requested
    time are checked on every call, and the leaf is never cached. Safe to share between
    threads; bounded to ``max_entries`` (cleared when full).
    """

    def __init__(self, max_entries: int = 1024) -> None:
        self._max_entries = max_entries
        self._verified_links: set[tuple[bytes, bytes]] = set()
        self._parsed: dict[bytes, x509.Certificate] = {}
        self._lock = threading.Lock()

    def parsed(self, der: bytes, der_hash: bytes) -> x509.Certificate:
        found = self._parsed.get(der_hash)
        if found is not None:
            return found
        certificate = _parse(der)
        with self._lock:
            if len(self._parsed) >= self._max_entries:
                self._parsed.clear()
            self._parsed[der_hash] = certificate
        return certificate

    def knows_link(self, issuer_hash: bytes, subject_hash: bytes) -> bool:
        return (issuer_hash, subject_hash) in self._verified_links

    def remember_link(self, issuer_hash: bytes, subject_hash: bytes) -> None:
        with self._lock:
            if len(self._verified_links) >= self._max_entries:
                self._verified_links.clear()
            self._verified_links.add((issuer_hash, subject_hash))


def verify_chain(
    root: x509.Certificate,
    cabundle: tuple[bytes, ...],
    leaf_der: bytes,
    at: datetime,
    cache: IntermediateCache | None = None,
) -> x509.Certificate:
    """Validate the path from ``root`` to the leaf at time ``at``; return the parsed leaf."""
    root_der = root.public_bytes(Encoding.DER)
    if cabundle[0] != root_der:
        raise CertificateChainError(
            "CHAIN_ROOT_MISMATCH",
            f"expected cabundle[0] to be the trusted root {root.subject.rfc4514_string()} "
            f"(SHA-256 {hashlib.sha256(root_der).hexdigest()}), found a certificate with SHA-256 "
            f"{hashlib.sha256(cabundle[0]).hexdigest()}",
        )
    _check_time(root, at, "trusted root")
    ders = (root_der, *cabundle[1:], leaf_der)
    hashes_ = [hashlib.sha256(der).digest() for der in ders]
    certificates = [root]
    for position in range(1, len(ders)):
        is_leaf = position == len(ders) - 1
        label = "leaf certificate" if is_leaf else f"cabundle[{position}]"
        if cache is not None and not is_leaf:
            certificate = cache.parsed(ders[position], hashes_[position])
        else:
            certificate = _parse(ders[position])
        issuer = certificates[-1]
        _check_link(issuer, certificate, label)
        cached = cache is not None and not is_leaf and cache.knows_link(hashes_[position - 1], hashes_[position])
        if not cached:
            _check_signature(issuer, certificate, label)
            if cache is not None and not is_leaf:
                cache.remember_link(hashes_[position - 1], hashes_[position])
        _check_time(certificate, at, label)
        certificates.append(certificate)
    _check_ca_constraints(certificates)
    _check_leaf(certificates[-1])
    return certificates[-1]


def _parse(der: bytes) -> x509.Certificate:
    try:
        certificate = x509.load_der_x509_certificate(der)
        # Fields are parsed lazily: touch every one used later so malformed ones fail here, typed.
        certificate.subject.rfc4514_string()
        certificate.issuer.rfc4514_string()
        certificate.extensions  # noqa: B018
        certificate.public_key()
        certificate.not_valid_before_utc  # noqa: B018
        certificate.not_valid_after_utc  # noqa: B018
        certificate.signature_algorithm_oid  # noqa: B018
        certificate.signature  # noqa: B018
        certificate.tbs_certificate_bytes  # noqa: B018
        if certificate.serial_number <= 0:
            raise ValueError(f"serial number must be positive (RFC 5280), found {certificate.serial_number}")
    except _PARSE_ERRORS as err:
        raise CertificateChainError("CERT_MALFORMED", f"expected a DER X.509 v3 certificate: {err}") from None
    return certificate


def _check_link(issuer: x509.Certificate, certificate: x509.Certificate, label: str) -> None:
    if certificate.issuer != issuer.subject:
        raise CertificateChainError(
            "CHAIN_NAME",
            f"expected {label} to be issued by {issuer.subject.rfc4514_string()}, "
            f"found issuer {certificate.issuer.rfc4514_string()}",
        )
    if certificate.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA384:
        raise CertificateChainError(
            "CHAIN_ALGORITHM",
            f"expected {label} signed with ecdsa-with-SHA384, "
            f"found {certificate.signature_algorithm_oid.dotted_string}",
        )


def _p384_key(certificate: x509.Certificate, label: str) -> ec.EllipticCurvePublicKey:
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise CertificateChainError("CHAIN_ALGORITHM", f"expected a P-384 public key in {label}, found {key!r}")
    return key


def _check_signature(issuer: x509.Certificate, certificate: x509.Certificate, label: str) -> None:
    key = _p384_key(issuer, f"the issuer of {label}")
    try:
        key.verify(certificate.signature, certificate.tbs_certificate_bytes, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise CertificateChainError(
            "CHAIN_SIGNATURE", f"expected {label} to carry a valid signature by {issuer.subject.rfc4514_string()}"
        ) from None


def _check_time(certificate: x509.Certificate, at: datetime, label: str) -> None:
    not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if not not_before <= at <= not_after:
        raise CertificateChainError(
            "CERT_TIME",
            f"expected {label} to be valid at {at.isoformat()}, found validity {not_before.isoformat()} "
            f"to {not_after.isoformat()}",
        )


def _check_ca_constraints(certificates: list[x509.Certificate]) -> None:
    """Every certificate but the leaf must be a CA allowed to sign certificates within its pathLen."""
    last_ca = len(certificates) - 2
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


def _check_leaf(leaf: x509.Certificate) -> None:
    constraints = _extension(leaf, x509.BasicConstraints)
    if constraints is not None and constraints.value.ca:
        raise CertificateChainError("CHAIN_CONSTRAINT", "expected the leaf certificate not to be a CA, found CA=true")
    usage = _extension(leaf, x509.KeyUsage)
    if usage is None or not usage.value.digital_signature:
        raise CertificateChainError(
            "CHAIN_CONSTRAINT", "expected the leaf certificate keyUsage to include digitalSignature"
        )
    _p384_key(leaf, "leaf certificate")
    _no_unknown_critical(leaf, "leaf certificate")


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
