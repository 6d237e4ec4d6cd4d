"""The parent's credential server: IMDSv2 (a loopback stand-in) → ``trustdial host-credentials`` → the enclave's
credential client, with refresh before expiry and typed refusals; the CLI as a real process."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import cbor2
import pytest
from kms_loopback import Imds, KeyPolicy, KmsState, imds_server
from serve_gateway import BIN, start_process, stop_process

from enclave_app.addresses import Address, parse_address
from enclave_app.frames import HEADER
from enclave_app.host_credentials import CredentialCache, CredentialServer, ImdsCredentialSource
from enclave_app.sealed.credentials import fetch_credentials
from enclave_app.sealed.errors import SealedModelError


def state() -> KmsState:
    return KmsState(policy=KeyPolicy([], {}), attestation_root=lambda: None)  # type: ignore[arg-type,return-value]


@contextmanager
def serving(cache: CredentialCache) -> Iterator[Address]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = CredentialServer(cache)
    bound = asyncio.run_coroutine_threadsafe(server.start(parse_address("tcp:127.0.0.1:0")), loop).result(10)
    try:
        yield bound
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_imdsv2_credentials_are_fetched_with_a_session_token() -> None:
    imds = Imds(state())
    with imds_server(imds) as url:
        credentials = ImdsCredentialSource(url).fetch()
    assert credentials.access_key_id in imds.state.credentials
    assert credentials.session_token == imds.state.credentials[credentials.access_key_id].token
    assert imds.tokens  # a token was PUT for; the stand-in answers GETs only with one


def test_cached_credentials_are_served_until_the_refresh_margin_then_refreshed() -> None:
    imds = Imds(state(), lifetime=timedelta(hours=6))
    now = [datetime.now(UTC)]
    with imds_server(imds) as url:
        cache = CredentialCache(ImdsCredentialSource(url).fetch, timedelta(minutes=15), clock=lambda: now[0])
        first = cache.get()
        assert cache.get() == first and imds.fetches == 1
        now[0] = first.expiration - timedelta(minutes=16)
        assert cache.get() == first and imds.fetches == 1
        now[0] = first.expiration - timedelta(minutes=14)  # inside the margin: fresh ones before these expire
        second = cache.get()
    assert imds.fetches == 2 and second.access_key_id != first.access_key_id


def test_credentials_that_imds_hands_out_already_expired_are_refused() -> None:
    imds = Imds(state(), lifetime=timedelta(minutes=-1))
    with imds_server(imds) as url, pytest.raises(SealedModelError) as caught:
        CredentialCache(ImdsCredentialSource(url).fetch).get()
    assert caught.value.code == "CREDENTIALS_EXPIRED"


def test_the_enclave_client_receives_the_credentials() -> None:
    imds = Imds(state())
    with imds_server(imds) as url, serving(CredentialCache(ImdsCredentialSource(url).fetch)) as address:
        credentials = fetch_credentials(address)
        again = fetch_credentials(address)
    issued = imds.state.credentials[credentials.access_key_id]
    assert (credentials.secret_access_key, credentials.session_token) == (issued.secret, issued.token)
    assert credentials.expiration == issued.expires and again == credentials and imds.fetches == 1


@pytest.mark.parametrize(("lifetime", "code"), [(timedelta(minutes=-5), "CREDENTIALS_EXPIRED"),
                                                (timedelta(seconds=30), "CREDENTIALS_EXPIRED")])  # fmt: skip
def test_expired_or_nearly_expired_credentials_are_refused_by_the_enclave(lifetime: timedelta, code: str) -> None:
    imds = Imds(state(), lifetime=lifetime)
    with imds_server(imds) as url, serving(CredentialCache(ImdsCredentialSource(url).fetch)) as address:
        with pytest.raises(SealedModelError) as caught:
            fetch_credentials(address)
    assert caught.value.code == code


def test_an_unreachable_imds_is_a_typed_refusal_and_the_server_keeps_serving() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{unused.getsockname()[1]}"
    with serving(CredentialCache(ImdsCredentialSource(dead, timeout=2).fetch)) as address:
        for _ in range(2):
            with pytest.raises(SealedModelError) as caught:
                fetch_credentials(address)
            assert caught.value.code == "CREDENTIALS_UNAVAILABLE" and "IMDS_UNAVAILABLE" in caught.value.reason


def _exchange(sock: socket.socket, frame: bytes) -> dict[str, object]:
    sock.sendall(frame)
    (length,) = HEADER.unpack(sock.recv(4, socket.MSG_WAITALL))
    reply: dict[str, object] = cbor2.loads(sock.recv(length, socket.MSG_WAITALL))
    return reply


def test_bad_requests_get_typed_answers_on_the_same_connection() -> None:
    imds = Imds(state())
    with imds_server(imds) as url, serving(CredentialCache(ImdsCredentialSource(url).fetch)) as address:
        with socket.create_connection((address.host, address.port), timeout=10) as sock:
            unknown = cbor2.dumps({"op": "secrets"})
            assert _exchange(sock, HEADER.pack(len(unknown)) + unknown)["error"] == {
                "code": "UNKNOWN_OP", "message": "expected op credentials"}  # fmt: skip
            assert _exchange(sock, HEADER.pack(3) + b"\xff\xff\xff")["error"]["code"] == "BAD_FRAME"  # type: ignore[index]
            good = cbor2.dumps({"op": "credentials"})
            assert _exchange(sock, HEADER.pack(len(good)) + good)["ok"] is True
        with socket.create_connection((address.host, address.port), timeout=10) as sock:
            assert _exchange(sock, HEADER.pack(1 << 20))["error"]["code"] == "FRAME_TOO_LARGE"  # type: ignore[index]
        assert fetch_credentials(address).access_key_id  # still serving


def test_the_host_credentials_command_serves_over_its_listen_address() -> None:
    imds = Imds(state())
    with imds_server(imds) as url:
        process, ready = start_process([BIN / "trustdial", "host-credentials", "--listen", "tcp:127.0.0.1:0",
                                        "--imds", url])  # fmt: skip
        try:
            credentials = fetch_credentials(parse_address(ready["address"]))
        finally:
            stop_process(process)
    assert credentials.access_key_id in imds.state.credentials
