"""The parent instance's credential server: the enclave has no network and no IMDS, so the host fetches the
instance role's temporary credentials from IMDSv2 and hands them to the enclave over vsock, fetching fresh ones
before the cached set comes within ``refresh_margin`` of its expiry. The host never sees model plaintext: the
enclave signs KMS requests with these credentials, and KMS answers to the enclave's attested key.

Wire: the frame protocol (:mod:`enclave_app.frames`), ``{"op": "credentials"}`` →
``{"ok": true, ...AwsCredentials.to_wire()}`` or ``{"ok": false, "error": {"code", "message"}}``. On vsock,
connections from CIDs outside ``allowed_cids`` are closed unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from enclave_app.addresses import Address, listening_socket
from enclave_app.errors import RequestError
from enclave_app.frames import FrameError, decode_message, encode_frame, read_frame
from enclave_app.sealed.credentials import AwsCredentials, parse_expiration
from enclave_app.sealed.errors import SealedModelError

log = logging.getLogger("trustdial.host_credentials")
IMDS = "http://169.254.169.254"
TOKEN_TTL_SECONDS = 21600
DEFAULT_REFRESH_MARGIN = timedelta(minutes=15)
MAX_IMDS_BYTES = 64 * 1024


@dataclass
class ImdsCredentialSource:
    """The instance role's credentials from IMDSv2 (token PUT, then the role's security-credentials document)."""

    base_url: str = IMDS
    timeout: float = 5.0

    def _open(self, request: urllib.request.Request) -> bytes:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                data: bytes = answer.read(MAX_IMDS_BYTES + 1)
        except (urllib.error.URLError, OSError) as err:
            raise SealedModelError("IMDS_UNAVAILABLE", f"{request.full_url}: {err}") from err
        if len(data) > MAX_IMDS_BYTES:
            raise SealedModelError("IMDS_INVALID", f"{request.full_url} answered more than {MAX_IMDS_BYTES} bytes")
        return data

    def fetch(self) -> AwsCredentials:
        token = self._open(
            urllib.request.Request(
                f"{self.base_url}/latest/api/token",
                method="PUT",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
            )
        ).decode()
        headers = {"X-aws-ec2-metadata-token": token}
        base = f"{self.base_url}/latest/meta-data/iam/security-credentials/"
        roles = self._open(urllib.request.Request(base, headers=headers)).decode().split()
        if len(roles) != 1:
            raise SealedModelError("IMDS_INVALID", f"expected one instance role, found {len(roles)}")
        try:
            document = json.loads(self._open(urllib.request.Request(base + roles[0], headers=headers)))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise SealedModelError("IMDS_INVALID", f"the role credentials are not JSON: {err}") from err
        if not isinstance(document, dict) or document.get("Code") != "Success":
            raise SealedModelError("IMDS_INVALID", "IMDS did not return the role's credentials (Code != Success)")
        values = [document.get(k) for k in ("AccessKeyId", "SecretAccessKey", "Token")]
        if not all(isinstance(v, str) and v for v in values):
            raise SealedModelError("IMDS_INVALID", "the role credentials lack AccessKeyId, SecretAccessKey or Token")
        expiration = parse_expiration(document.get("Expiration"))
        return AwsCredentials(str(values[0]), str(values[1]), str(values[2]), expiration)


@dataclass
class CredentialCache:
    """Serves the cached credentials until they come within ``refresh_margin`` of expiry, then fetches new ones;
    never serves credentials that have expired."""

    source: Callable[[], AwsCredentials]
    refresh_margin: timedelta = DEFAULT_REFRESH_MARGIN
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    fetches: int = 0
    _current: AwsCredentials | None = field(default=None, repr=False)

    def get(self) -> AwsCredentials:
        now = self.clock()
        if self._current is None or self._current.expiration - now <= self.refresh_margin:
            self._current = self.source()
            self.fetches += 1
        if self._current.expiration <= now:
            raise SealedModelError(
                "CREDENTIALS_EXPIRED", f"the instance role's credentials expired at {self._current.expiration}"
            )
        return self._current


class CredentialServer:
    def __init__(self, cache: CredentialCache, *, allowed_cids: Collection[int] = (), stall_timeout: float = 10.0):
        self.cache = cache
        self.allowed_cids = frozenset(allowed_cids)
        self.stall_timeout = stall_timeout
        self._lock = asyncio.Lock()
        self._server: asyncio.Server | None = None

    async def start(self, address: Address) -> Address:
        sock = listening_socket(address)
        self._server = await asyncio.start_server(self._connection, sock=sock)
        if address.scheme == "tcp":
            host, port = sock.getsockname()[:2]
            return Address("tcp", host, port)
        return address

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _answer(self, message: dict[str, Any]) -> dict[str, Any]:
        if message.get("op") != "credentials":
            return {"ok": False, "error": {"code": "UNKNOWN_OP", "message": "expected op credentials"}}
        async with self._lock:  # one IMDS round trip at a time
            try:
                credentials = await asyncio.get_running_loop().run_in_executor(None, self.cache.get)
            except SealedModelError as err:
                log.warning("credentials unavailable: %s", err)
                return {"ok": False, "error": {"code": err.code, "message": err.reason}}
        return {"ok": True, **credentials.to_wire()}

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            if self.allowed_cids and not (isinstance(peer, tuple) and peer and peer[0] in self.allowed_cids):
                log.warning("refused a connection from %r (allowed CIDs %s)", peer, sorted(self.allowed_cids))
                return
            while True:
                try:
                    body = await read_frame(reader, max_size=4096, stall_timeout=self.stall_timeout)
                    if body is None:
                        return
                    reply = {**(await self._answer(decode_message(body)))}
                except FrameError as err:
                    reply = {"ok": False, "error": {"code": err.code, "message": err.message}}
                    writer.write(encode_frame(reply))
                    return
                except RequestError as err:  # a malformed request gets an answer; the connection continues
                    reply = {"ok": False, "error": {"code": err.code, "message": err.message}}
                writer.write(encode_frame(reply))
                await writer.drain()
        except ConnectionError:
            log.info("credential client went away")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
