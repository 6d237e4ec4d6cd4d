"""What the enclave app needs from a Nitro Security Module (real /dev/nsm or simulated)."""

from __future__ import annotations

from typing import Protocol


class Nsm(Protocol):
    """The NSM operations trustdial uses."""

    module_id: str

    def attest(
        self, *, nonce: bytes | None = None, user_data: bytes | None = None, public_key: bytes | None = None
    ) -> bytes:
        """Return a raw (untagged unless configured) COSE_Sign1 attestation document."""
        ...

    def describe_pcr(self, index: int) -> tuple[bool, bytes]:
        """Return (locked, value) of PCR ``index``."""
        ...

    def get_random(self, length: int) -> bytes:
        """Return ``length`` random bytes from the NSM's entropy source."""
        ...
