"""A simulated Nitro Security Module for development and tests.

Emits attestation documents with the real NSM's structure: untagged COSE_Sign1 (tag 18 on
request), protected header ``{1: -35}``, empty unprotected header, ES384 signature, and a payload
map with all nine keys in the NSM's order (absent optionals as ``null``), definite-length or,
as late-2025 NSMs do, indefinite-length. The chain is AWS-shaped but rooted in a fresh simulator
root: the verifier accepts these documents only when that root is passed explicitly.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from trustdial_verifier.unstable.cose import ALG_ES384, encode_cose_sign1, raw_ecdsa_signature, sig_structure

from enclave_app.nsm import simulated_pki

PROTECTED_ES384 = cbor2.dumps({1: -35})
PCR_COUNT = 16
PCR_BYTES = 48
PCR_LIMIT = 32
LOCKED_PCRS = range(16)
COSE_SIGN1_TAG = 18
LEAF_RENEW_MARGIN = timedelta(minutes=5)


def default_pcrs(instance_id: str) -> dict[int, bytes]:
    """16 PCRs of 48 bytes: PCR0-2 a stable simulated image measurement, PCR4 the instance, rest zero."""
    pcrs = {index: bytes(PCR_BYTES) for index in range(PCR_COUNT)}
    for index in (0, 1, 2):
        pcrs[index] = hashlib.sha384(f"trustdial simulated image PCR{index}".encode()).digest()
    pcrs[4] = hashlib.sha384(f"trustdial simulated parent instance {instance_id}".encode()).digest()
    return pcrs


class SimulatedNsm:
    """An in-process NSM. ``pcrs`` override the defaults index by index; ``debug`` zeroes PCR0-2
    like a debug-mode enclave; ``clock`` (aware datetimes) drives timestamps and certificate validity."""

    def __init__(
        self,
        pcrs: Mapping[int, bytes] | None = None,
        *,
        debug: bool = False,
        indefinite_payload: bool = False,
        tag18: bool = False,
        clock: Callable[[], datetime] | None = None,
        region: str = "us-east-1",
        pki: simulated_pki.SimulatedPki | None = None,
    ) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self.region = region
        self.instance_id = "i-" + os.urandom(8).hex()[:17]
        self.module_id = f"{self.instance_id}-enc{os.urandom(8).hex()}"
        self.indefinite_payload = indefinite_payload
        self.tag18 = tag18
        self._pcrs = default_pcrs(self.instance_id)
        self._pcrs.update(pcrs or {})
        if debug:
            for index in (0, 1, 2):
                self._pcrs[index] = bytes(PCR_BYTES)
        self._pki = pki or simulated_pki.build_pki(self._now(), region, self.instance_id, self.module_id)

    @property
    def root_certificate(self) -> x509.Certificate:
        return self._pki.root.certificate

    @property
    def root_pem(self) -> bytes:
        return self._pki.root.certificate.public_bytes(Encoding.PEM)

    @property
    def pki(self) -> simulated_pki.SimulatedPki:
        return self._pki

    def describe_pcr(self, index: int) -> tuple[bool, bytes]:
        """(locked, value) for PCR 0-31; PCRs never set or extended read as 48 zero bytes."""
        if not 0 <= index < PCR_LIMIT:
            raise ValueError(f"expected a PCR index 0-{PCR_LIMIT - 1}, found {index}")
        return index in LOCKED_PCRS, self._pcrs.get(index, bytes(PCR_BYTES))

    def extend_pcr(self, index: int, data: bytes) -> bytes:
        """PCR[index] = SHA-384(PCR[index] || data), for unlocked PCRs 16-31 like the real NSM."""
        if index in LOCKED_PCRS or not 0 <= index < PCR_LIMIT:
            raise ValueError(f"PCR{index} is locked or out of range; only 16-31 can be extended")
        value = hashlib.sha384(self._pcrs.get(index, bytes(PCR_BYTES)) + data).digest()
        self._pcrs[index] = value
        return value

    def get_random(self, length: int) -> bytes:
        return os.urandom(length)

    def attest(
        self, *, nonce: bytes | None = None, user_data: bytes | None = None, public_key: bytes | None = None
    ) -> bytes:
        return self.sign(
            self.encode_payload(self.payload_fields(nonce=nonce, user_data=user_data, public_key=public_key))
        )

    def payload_fields(
        self, *, nonce: bytes | None = None, user_data: bytes | None = None, public_key: bytes | None = None
    ) -> dict[str, Any]:
        """The nine payload fields, in the NSM's order, for the current time and chain."""
        now = self._now()
        self._renew_expired(now)
        return {
            "module_id": self.module_id,
            "digest": "SHA384",
            "timestamp": int(now.timestamp() * 1000),
            "pcrs": dict(sorted(self._pcrs.items())),
            "certificate": self._pki.leaf.certificate.public_bytes(Encoding.DER),
            "cabundle": [
                issued.certificate.public_bytes(Encoding.DER) for issued in (self._pki.root, *self._pki.intermediates)
            ],
            "public_key": public_key,
            "user_data": user_data,
            "nonce": nonce,
        }

    def encode_payload(self, fields: Mapping[str, Any]) -> bytes:
        if not self.indefinite_payload:
            return cbor2.dumps(dict(fields))
        return b"\xbf" + b"".join(cbor2.dumps(key) + cbor2.dumps(value) for key, value in fields.items()) + b"\xff"

    def sign(self, payload: bytes, *, protected: bytes = PROTECTED_ES384) -> bytes:
        """Wrap ``payload`` bytes (as given, never re-encoded) in a COSE_Sign1 signed by the leaf key."""
        der = self._pki.leaf.key.sign(sig_structure(protected, payload), ec.ECDSA(hashes.SHA384()))
        return encode_cose_sign1(protected, payload, raw_ecdsa_signature(der, ALG_ES384), tagged=self.tag18)

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the simulated NSM clock must return timezone-aware datetimes")
        return now

    def _renew_expired(self, now: datetime) -> None:
        """Like the real NSM, issue a fresh leaf when the current one lapses (and fresh
        intermediates when one of them has, e.g. under a clock that jumps days ahead)."""
        pki = self._pki
        renewed = any(not _valid(issued, now, timedelta(0)) for issued in pki.intermediates)
        if renewed:
            intermediates = simulated_pki.issue_intermediates(pki.root, now, self.region, self.instance_id)
            pki = simulated_pki.SimulatedPki(pki.root, intermediates, pki.leaf)
        if renewed or not _valid(pki.leaf, now, LEAF_RENEW_MARGIN):
            leaf = simulated_pki.issue_leaf(pki.intermediates[-1], now, self.module_id, self.region)
            pki = simulated_pki.SimulatedPki(pki.root, pki.intermediates, leaf)
        self._pki = pki


def _valid(issued: simulated_pki.Issued, now: datetime, margin: timedelta) -> bool:
    certificate = issued.certificate
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc - margin
