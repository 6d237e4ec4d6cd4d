"""The enclave's pinned KMS roots are exactly certifi's certificates of the same labels, nothing else, and the
default TLS context trusts nothing but them (the loopback test CA is refused without --kms-ca-file)."""

from __future__ import annotations

import re
import ssl

import certifi

from enclave_app.sealed.kms_roots import KMS_ROOTS_PEM

LABELS = {"Amazon Root CA 1", "Amazon Root CA 2", "Amazon Root CA 3", "Amazon Root CA 4",
          "Starfield Services Root Certificate Authority - G2"}  # fmt: skip


def certifi_roots() -> dict[str, bytes]:
    text = open(certifi.where(), encoding="ascii").read()
    found = {}
    for label, pem in re.findall(r'# Label: "(.*?)"\n.*?(-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----\n)',
                                 text, re.S):  # fmt: skip
        if label in LABELS:
            found[label] = ssl.PEM_cert_to_DER_cert(pem)
    return found


def test_the_pinned_roots_are_certifis_amazon_and_starfield_services_roots() -> None:
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----\n", KMS_ROOTS_PEM, re.S)
    pinned = {ssl.PEM_cert_to_DER_cert(block) for block in blocks}  # (Starfield's serial 0 upsets cryptography)
    assert len(blocks) == len(pinned) == 5
    expected = certifi_roots()
    assert set(expected) == LABELS
    assert pinned == set(expected.values())


def test_the_default_context_holds_only_the_pinned_roots() -> None:
    from enclave_app.addresses import parse_address
    from enclave_app.sealed.kms_client import KmsEndpoint

    context = KmsEndpoint(parse_address("tcp:127.0.0.1:1"), "us-east-1").tls_context()
    subjects = {dict(item[0] for item in cert["subject"])["commonName"] for cert in context.get_ca_certs()}
    assert subjects == {"Amazon Root CA 1", "Amazon Root CA 2", "Amazon Root CA 3", "Amazon Root CA 4",
                        "Starfield Services Root Certificate Authority - G2"}  # fmt: skip
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
