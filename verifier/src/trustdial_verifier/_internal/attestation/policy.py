"""What a relying party requires of an authentic attestation document.

Policies compose in the spirit of sigstore-python's ``verify.policy``: each one checks one
thing and raises :class:`~trustdial_verifier._internal.attestation.errors.PolicyError` saying what it expected
and what it found. Containers refuse to be empty: ``AllOf([])``, ``AnyOf([])`` and
``PcrsEqual({})`` reject every document, because an empty policy must never mean
"anything goes". :class:`UnsafeNoPolicy` exists for tests of the cryptography alone.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from trustdial_verifier._internal.attestation.document import AttestationDocument
from trustdial_verifier._internal.attestation.errors import PolicyError
from trustdial_verifier.errors import InputError

PCR_INDEX_LIMIT = 32
DEFAULT_FUTURE_TOLERANCE_SECONDS = 30.0


@runtime_checkable
class AttestationPolicy(Protocol):
    """A requirement on an authentic document, evaluated at the verification time ``at``."""

    def verify(self, document: AttestationDocument, at: datetime) -> None:
        """Return if satisfied; raise :class:`PolicyError` otherwise."""
        ...


def apply_policy(policy: AttestationPolicy, document: AttestationDocument, at: datetime) -> None:
    """Run ``policy``; anything but a normal ``None`` return (e.g. a custom policy returning ``False``)
    is a rejection, so a policy written to return a verdict can never pass by accident."""
    outcome: object = policy.verify(document, at)  # type: ignore[func-returns-value]
    if outcome is not None:
        raise PolicyError(
            "POLICY_RESULT",
            f"expected {type(policy).__name__}.verify to return None or raise PolicyError, found {outcome!r:.80}",
        )


def _policies(container: str, policies: Iterable[AttestationPolicy]) -> tuple[AttestationPolicy, ...]:
    """Snapshot the children once: a generator or a list mutated later must not change what is checked."""
    snapshot = tuple(policies)
    for child in snapshot:
        if not callable(getattr(child, "verify", None)):
            raise InputError("POLICY_TYPE", f"expected attestation policies in {container}, found {child!r:.80}")
    return snapshot


@dataclass(frozen=True)
class AllOf:
    """Every child policy must pass. Empty = refused (``POLICY_EMPTY``)."""

    policies: Sequence[AttestationPolicy]

    def __post_init__(self) -> None:
        object.__setattr__(self, "policies", _policies("AllOf", self.policies))

    def verify(self, document: AttestationDocument, at: datetime) -> None:
        if not self.policies:
            raise PolicyError("POLICY_EMPTY", "expected at least one policy in AllOf, found none: refusing to accept")
        for policy in self.policies:
            apply_policy(policy, document, at)


@dataclass(frozen=True)
class AnyOf:
    """At least one child policy must pass (e.g. several acceptable PCR sets). Empty = refused."""

    policies: Sequence[AttestationPolicy]

    def __post_init__(self) -> None:
        object.__setattr__(self, "policies", _policies("AnyOf", self.policies))

    def verify(self, document: AttestationDocument, at: datetime) -> None:
        if not self.policies:
            raise PolicyError("POLICY_EMPTY", "expected at least one policy in AnyOf, found none: refusing to accept")
        failures: list[str] = []
        for policy in self.policies:
            try:
                apply_policy(policy, document, at)
            except PolicyError as err:
                failures.append(f"{err.code}: {err.reason}")
                continue
            return
        raise PolicyError(
            "POLICY_NONE_MATCHED", "expected one of the alternatives to pass, found: " + "; ".join(failures)
        )


@dataclass(frozen=True)
class PcrsEqual:
    """Each given PCR index must be present and equal (constant-time) to the given bytes. Empty = refused."""

    expected: Mapping[int, bytes]

    def __post_init__(self) -> None:
        for index, value in self.expected.items():
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < PCR_INDEX_LIMIT:
                raise InputError("PCR_INDEX", f"expected PCR index 0-{PCR_INDEX_LIMIT - 1}, found {index!r}")
            if not isinstance(value, bytes):
                raise InputError("PCR_VALUE", f"expected PCR{index} as bytes, found {type(value).__name__}")

    def verify(self, document: AttestationDocument, at: datetime) -> None:
        if not self.expected:
            raise PolicyError("POLICY_EMPTY", "expected at least one PCR in PcrsEqual, found none: refusing to accept")
        for index in sorted(self.expected):
            want = self.expected[index]
            found = document.pcrs.get(index)
            if found is None:
                raise PolicyError(
                    "PCR_MISSING", f"expected PCR{index} = {want.hex()}, found no PCR{index} in the document"
                )
            if not hmac.compare_digest(found, want):
                raise PolicyError("PCR_MISMATCH", f"expected PCR{index} = {want.hex()}, found {found.hex()}")


def _bytes_equal(name: str, code: str, want: bytes, found: bytes | None) -> None:
    if found is None:
        raise PolicyError(code, f"expected {name} = {want.hex()}, found no {name} in the document")
    if not hmac.compare_digest(found, want):
        raise PolicyError(code, f"expected {name} = {want.hex()}, found {found.hex()}")


def _require_expectation(policy: str, name: str, expected: bytes) -> None:
    """An empty expected value would only match a document whose field is empty too: a check the
    caller meant as "bind to my value" silently becomes "bind to nothing", so it is refused."""
    if not isinstance(expected, bytes | bytearray) or not expected:
        raise InputError(
            "EMPTY_EXPECTATION", f"{policy}: expected a non-empty {name} (bytes) to compare with, got {expected!r:.40}"
        )


@dataclass(frozen=True)
class NonceEquals:
    """The document's nonce must equal the caller's challenge (``NONCE_MISMATCH``)."""

    nonce: bytes

    def __post_init__(self) -> None:
        _require_expectation("NonceEquals", "nonce", self.nonce)

    def verify(self, document: AttestationDocument, at: datetime) -> None:
        _bytes_equal("nonce", "NONCE_MISMATCH", self.nonce, document.nonce)


@dataclass(frozen=True)
class UserDataEquals:
    """The document's user_data must equal the given bytes (``USER_DATA_MISMATCH``)."""

    user_data: bytes

    def __post_init__(self) -> None:
        _require_expectation("UserDataEquals", "user_data", self.user_data)

    def verify(self, document: AttestationDocument, at: datetime) -> None:
        _bytes_equal("user_data", "USER_DATA_MISMATCH", self.user_data, document.user_data)


@dataclass(frozen=True)
class PublicKeyEquals:
    """The document's public_key must equal the given bytes (``PUBLIC_KEY_MISMATCH``)."""

    public_key: bytes

    def __post_init__(self) -> None:
        _require_expectation("PublicKeyEquals", "public_key", self.public_key)

    def verify(self, document: AttestationDocument, at: datetime) -> None:
        _bytes_equal("public_key", "PUBLIC_KEY_MISMATCH", self.public_key, document.public_key)


@dataclass(frozen=True)
class MaxAge:
    """The document must be at most ``seconds`` old at the verification time (``STALE``), and not
    dated more than ``future_tolerance_seconds`` after it (``FROM_FUTURE``, clock skew allowance)."""

    seconds: float
    future_tolerance_seconds: float = field(default=DEFAULT_FUTURE_TOLERANCE_SECONDS)

    def __post_init__(self) -> None:
        if not self.seconds >= 0 or not self.future_tolerance_seconds >= 0:
            raise InputError("MAX_AGE", f"expected non-negative seconds, found {self.seconds!r}")

    def verify(self, document: AttestationDocument, at: datetime) -> None:
        age = at - document.timestamp
        if age > timedelta(seconds=self.seconds):
            raise PolicyError(
                "STALE",
                f"expected a document at most {self.seconds:g} s old at {at.isoformat()}, found one "
                f"{age.total_seconds():.3f} s old (timestamp {document.timestamp.isoformat()})",
            )
        if -age > timedelta(seconds=self.future_tolerance_seconds):
            raise PolicyError(
                "FROM_FUTURE",
                f"expected a document dated no later than {self.future_tolerance_seconds:g} s after "
                f"{at.isoformat()}, found timestamp {document.timestamp.isoformat()}",
            )


@dataclass(frozen=True)
class UnsafeNoPolicy:
    """Accepts every authentic document. Only for testing the cryptographic checks alone:
    it says nothing about which enclave produced the document."""

    def verify(self, document: AttestationDocument, at: datetime) -> None:
        return None
