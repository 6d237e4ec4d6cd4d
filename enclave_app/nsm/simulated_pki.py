"""An AWS-shaped certificate hierarchy for the simulated NSM.

Same shape as the real one (root → regional → zonal → instance → leaf, all ECDSA P-384 with
SHA-384, the same extensions, criticality, pathLen and lifetimes), under names that say
"simulated" so no one mistakes it for AWS. Keys are generated fresh per hierarchy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT_LIFETIME = timedelta(days=365 * 30)
REGIONAL_LIFETIME = timedelta(days=20)
ZONAL_LIFETIME = timedelta(days=6)
INSTANCE_LIFETIME = timedelta(days=1)
LEAF_LIFETIME = timedelta(hours=3, seconds=3)
ORGANIZATION = "trustdial simulated NSM"


def _key_usage(
    *, digital_signature: bool, key_cert_sign: bool, crl_sign: bool, content_commitment: bool
) -> x509.KeyUsage:
    """A KeyUsage with only the named bits settable; the encipherment and agreement bits are always off."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


_CA_USAGE = _key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False)
_INSTANCE_USAGE = _key_usage(digital_signature=False, key_cert_sign=True, crl_sign=False, content_commitment=False)
_LEAF_USAGE = _key_usage(digital_signature=True, key_cert_sign=False, crl_sign=False, content_commitment=True)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class SimulatedPki:
    """Root, the three intermediates (regional, zonal, instance) and the current leaf."""

    root: Issued
    intermediates: tuple[Issued, ...]
    leaf: Issued


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def name(common_name: str, *, with_locality: bool = False) -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "AWS"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ]
    if with_locality:
        attributes[1:1] = [
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Washington"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Seattle"),
        ]
    return x509.Name(attributes)


def issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: Issued | None,
    *,
    not_before: datetime,
    lifetime: timedelta,
    ca: bool,
    path_length: int | None,
    key_usage: x509.KeyUsage,
    key_usage_critical: bool = True,
    hash_algorithm: hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None = None,
) -> Issued:
    """Issue one certificate; ``issuer`` None = self-signed. Keyword knobs let tests build bad chains."""
    signer_key = key if issuer is None else issuer.key
    issuer_name = subject if issuer is None else issuer.certificate.subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(os.urandom(16), "big") >> 1)
        .not_valid_before(not_before)
        .not_valid_after(not_before + lifetime)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(key_usage, critical=key_usage_critical)
    )
    if ca:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if issuer is not None and ca:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    certificate = builder.sign(signer_key, hash_algorithm or hashes.SHA384())
    return Issued(certificate, key)


def issue_root(now: datetime) -> Issued:
    return issue(
        name("simulated.aws.nitro-enclaves"),
        new_key(),
        None,
        not_before=now - timedelta(days=1),
        lifetime=ROOT_LIFETIME,
        ca=True,
        path_length=None,
        key_usage=_CA_USAGE,
    )


def issue_intermediates(root: Issued, now: datetime, region: str, instance_id: str) -> tuple[Issued, ...]:
    regional = issue(
        name(f"{os.urandom(8).hex()}.{region}.simulated.aws.nitro-enclaves"),
        new_key(),
        root,
        not_before=now - timedelta(days=1),
        lifetime=REGIONAL_LIFETIME,
        ca=True,
        path_length=2,
        key_usage=_CA_USAGE,
    )
    zonal = issue(
        name(f"{os.urandom(8).hex()}.zonal.{region}.simulated.aws.nitro-enclaves", with_locality=True),
        new_key(),
        regional,
        not_before=now - timedelta(hours=12),
        lifetime=ZONAL_LIFETIME,
        ca=True,
        path_length=1,
        key_usage=_CA_USAGE,
    )
    instance = issue(
        name(f"{instance_id}.{region}.simulated.aws.nitro-enclaves", with_locality=True),
        new_key(),
        zonal,
        not_before=now - timedelta(hours=1),
        lifetime=INSTANCE_LIFETIME,
        ca=True,
        path_length=0,
        key_usage=_INSTANCE_USAGE,
    )
    return (regional, zonal, instance)


def issue_leaf(instance: Issued, now: datetime, module_id: str, region: str) -> Issued:
    return issue(
        name(f"{module_id}.{region}.simulated.aws", with_locality=True),
        new_key(),
        instance,
        not_before=now - timedelta(seconds=3),
        lifetime=LEAF_LIFETIME,
        ca=False,
        path_length=None,
        key_usage=_LEAF_USAGE,
        key_usage_critical=False,
    )


def build_pki(now: datetime, region: str, instance_id: str, module_id: str) -> SimulatedPki:
    root = issue_root(now)
    intermediates = issue_intermediates(root, now, region, instance_id)
    return SimulatedPki(root, intermediates, issue_leaf(intermediates[-1], now, module_id, region))
