"""Temporary AWS credentials the parent instance hands to the enclave (``host-credentials``, over vsock).

The wire is the enclave's frame protocol (4-byte length + one CBOR map): request ``{"op": "credentials"}``, reply
``{"ok": true, "access_key_id", "secret_access_key", "session_token", "expiration"}`` (expiration: RFC 3339 UTC) or
``{"ok": false, "error": {"code", "message"}}``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
from trustdial_verifier.errors import describe_value
from trustdial_verifier.unstable.decoding import strict_cbor

from enclave_app.addresses import Address
from enclave_app.frames import HEADER
from enclave_app.sealed.errors import SealedModelError
from enclave_app.sealed.transport import connect as connect_socket

#: credentials closer than this to expiry are not used to sign a request
MIN_REMAINING = timedelta(seconds=60)
MAX_REPLY = 64 * 1024


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(repr=False)
    expiration: datetime

    def to_wire(self) -> dict[str, Any]:
        return {
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "session_token": self.session_token,
            "expiration": self.expiration.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def require_fresh(self, now: datetime) -> None:
        if self.expiration - now < MIN_REMAINING:
            raise SealedModelError(
                "CREDENTIALS_EXPIRED",
                f"the parent's credentials expire at {self.expiration.isoformat()} (now {now.isoformat()}); "
                "the host credential server should have refreshed them",
            )


def parse_expiration(value: object) -> datetime:
    if not isinstance(value, str):
        raise SealedModelError("CREDENTIALS_INVALID", f"expected an RFC 3339 expiration, found {value!r:.80}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise SealedModelError("CREDENTIALS_INVALID", f"expected an RFC 3339 expiration, found {value!r:.80}") from err
    if parsed.tzinfo is None:
        raise SealedModelError("CREDENTIALS_INVALID", f"expiration {value!r:.80} has no time zone")
    return parsed.astimezone(UTC)


def credentials_from_wire(message: Mapping[str, Any]) -> AwsCredentials:
    values = [message.get(k) for k in ("access_key_id", "secret_access_key")]
    token = message.get("session_token")
    if not all(isinstance(v, str) and v for v in values) or not (token is None or isinstance(token, str)):
        raise SealedModelError("CREDENTIALS_INVALID", "the credential reply lacks string keys")
    return AwsCredentials(str(values[0]), str(values[1]), token, parse_expiration(message.get("expiration")))


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise SealedModelError("CREDENTIALS_UNAVAILABLE", "the credential server closed the connection early")
        data.extend(chunk)
    return bytes(data)


def fetch_credentials(
    address: Address, *, timeout: float = 10.0, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> AwsCredentials:
    """Ask the parent's credential server; refuse credentials that are missing, malformed or about to expire."""
    body = cbor2.dumps({"op": "credentials", "id": 1})
    try:
        with connect_socket(address, timeout) as sock:
            sock.sendall(HEADER.pack(len(body)) + body)
            (length,) = HEADER.unpack(_read_exactly(sock, HEADER.size))
            if length > MAX_REPLY:
                raise SealedModelError("CREDENTIALS_INVALID", f"a credential reply of {length} bytes")
            reply: Any = strict_cbor.decode(_read_exactly(sock, length), max_bytes=MAX_REPLY, floats=True)
    except OSError as err:
        raise SealedModelError(
            "CREDENTIALS_UNAVAILABLE", f"cannot reach the credential server at {address}: {err}"
        ) from err
    except strict_cbor.CborError as err:
        raise SealedModelError(
            "CREDENTIALS_INVALID", f"the credential reply is not CBOR the enclave accepts: {err.reason} ({err.code})"
        ) from None
    if not isinstance(reply, dict):
        raise SealedModelError("CREDENTIALS_INVALID", "the credential reply is not a map")
    if reply.get("ok") is not True:
        error = reply.get("error")
        error = error if isinstance(error, dict) else {}
        code = "CREDENTIALS_EXPIRED" if error.get("code") == "CREDENTIALS_EXPIRED" else "CREDENTIALS_UNAVAILABLE"
        found = f"{describe_value(error.get('code'))}: {describe_value(error.get('message'))}"
        raise SealedModelError(code, f"the credential server refused: {found}")
    credentials = credentials_from_wire(reply)
    credentials.require_fresh(clock())
    return credentials
