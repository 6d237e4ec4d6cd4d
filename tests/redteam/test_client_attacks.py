"""Attacks on trustdial_verifier._internal.client by a hostile service on loopback: every answer it can give ends in a
typed error (ClientError or VerificationError), never in outputs or in an unrelated exception."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from redteam_support import INPUTS, MODEL_SHA256, ReceiptEnclave
from trustdial_verifier._internal.attestation.verify import AttestationError
from trustdial_verifier._internal.client import Client, ClientError, ExpectedEnclave
from trustdial_verifier._internal.receipts.attested import BINDING_USER_DATA
from trustdial_verifier.errors import VerificationError

Route = Callable[[dict[str, list[str]]], tuple[int, Any]]


class HostileService:
    """A real HTTP server on 127.0.0.1 answering each path with whatever the test sets."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                route = routes.get(url.path)
                status, body = route(parse_qs(url.query)) if route else (404, {"error": {"code": "NOT_FOUND"}})
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def enclave() -> ReceiptEnclave:
    return ReceiptEnclave(clock=lambda: datetime.now(UTC))


@pytest.fixture(scope="module")
def running_service() -> Iterator[HostileService]:
    hostile = HostileService()
    try:
        yield hostile
    finally:
        hostile.close()


@pytest.fixture
def service(running_service: HostileService) -> HostileService:
    running_service.routes.clear()
    return running_service


def _client(service: HostileService, enclave: ReceiptEnclave) -> Client:
    expected = ExpectedEnclave(pcrs=enclave.pcrs, models={"m": MODEL_SHA256}, root=enclave.nsm.root_certificate)
    return Client(service.url, expected, timeout=10)


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def _honest_attestation(enclave: ReceiptEnclave) -> Route:
    def route(query: dict[str, list[str]]) -> tuple[int, Any]:
        nonce = bytes.fromhex(query["nonce"][0])
        fresh = enclave.nsm.attest(nonce=nonce, public_key=enclave.key.public_key_der(), user_data=BINDING_USER_DATA)
        return 200, {"document": _b64(fresh), "binding": _b64(enclave.document)}

    return route


@pytest.mark.parametrize("error", ["boom", ["boom"], 7, None], ids=["text", "list", "number", "null"])
def test_error_body_whose_error_is_not_an_object_is_a_client_error(
    service: HostileService, enclave: ReceiptEnclave, error: object
) -> None:
    service.routes["/v1/attestation"] = lambda query: (500, {"error": error})
    with _client(service, enclave) as client, pytest.raises(ClientError) as caught:
        client.attest()
    assert caught.value.code == "SERVICE_ERROR"


def test_success_body_that_is_not_an_object_is_rejected(service: HostileService, enclave: ReceiptEnclave) -> None:
    service.routes["/v1/attestation"] = lambda query: (200, ["document"])
    with _client(service, enclave) as client, pytest.raises(VerificationError) as caught:
        client.attest()
    assert caught.value.code == "RESPONSE_MALFORMED"


def test_binding_document_replayed_as_the_fresh_document_is_rejected(
    service: HostileService, enclave: ReceiptEnclave
) -> None:
    service.routes["/v1/attestation"] = lambda query: (
        200,
        {"document": _b64(enclave.document), "binding": _b64(enclave.document)},
    )
    with _client(service, enclave) as client, pytest.raises(AttestationError) as caught:
        client.attest()
    assert caught.value.code == "NONCE_MISMATCH"


def test_fresh_document_for_another_receipt_key_is_rejected(service: HostileService, enclave: ReceiptEnclave) -> None:
    other_key = ed25519.Ed25519PrivateKey.generate().public_key()
    spki = other_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def route(query: dict[str, list[str]]) -> tuple[int, Any]:
        fresh = enclave.nsm.attest(nonce=bytes.fromhex(query["nonce"][0]), public_key=spki, user_data=BINDING_USER_DATA)
        return 200, {"document": _b64(fresh), "binding": _b64(enclave.document)}

    service.routes["/v1/attestation"] = route
    with _client(service, enclave) as client, pytest.raises(VerificationError) as caught:
        client.attest()
    assert caught.value.code == "RECEIPT_KEY"


def test_outputs_with_a_dimension_beyond_u64_are_rejected_before_any_output_is_returned(
    service: HostileService, enclave: ReceiptEnclave
) -> None:
    service.routes["/v1/attestation"] = _honest_attestation(enclave)
    outputs = {"y": {"dtype": "int64", "shape": [0, 2**70], "data": ""}}
    service.routes["/v1/infer"] = lambda query: (200, {"outputs": outputs, "receipt": ""})
    with _client(service, enclave) as client, pytest.raises(VerificationError) as caught:
        client.infer("m", INPUTS)
    assert caught.value.code == "TENSOR_SHAPE"


def test_success_body_that_is_not_json_is_a_client_error(service: HostileService, enclave: ReceiptEnclave) -> None:
    service.routes["/v1/attestation"] = lambda query: (200, b"\xff not json")
    with _client(service, enclave) as client, pytest.raises(ClientError) as caught:
        client.attest()
    assert caught.value.code == "SERVICE_ERROR"


class DrippingService:
    """A raw loopback server that answers with headers at once, then one body byte per ``interval`` seconds:
    every single read completes well inside any per-read timeout, the whole answer takes ``length`` intervals."""

    def __init__(self, length: int = 100, interval: float = 0.2) -> None:
        import socket

        self.length, self.interval = length, interval
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve(self) -> None:
        import time

        self.listener.settimeout(0.2)
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(65536)
                head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {self.length}\r\n\r\n"
                try:
                    connection.sendall(head.encode())
                    for _ in range(self.length):
                        if self.stop.is_set():
                            return
                        connection.sendall(b" ")
                        time.sleep(self.interval)
                except OSError:
                    continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.listener.close()


def test_a_server_dripping_its_answer_cannot_hold_a_call_past_its_budget(enclave: ReceiptEnclave) -> None:
    # Before: the timeout bounded each read, so 100 bytes 0.2 s apart held attest() for 20 s.
    import time

    service = DrippingService()
    expected = ExpectedEnclave(pcrs=enclave.pcrs, models={"m": MODEL_SHA256}, root=enclave.nsm.root_certificate)
    try:
        with Client(service.url, expected, timeout=1.0) as client:
            started = time.monotonic()
            with pytest.raises(ClientError) as caught:
                client.attest()
            elapsed = time.monotonic() - started
    finally:
        service.close()
    assert caught.value.code == "DEADLINE_EXCEEDED"
    assert elapsed < 8.0, f"the 1 s budget held for {elapsed:.1f} s"


def test_output_name_with_a_lone_surrogate_is_a_typed_refusal(service: HostileService, enclave: ReceiptEnclave) -> None:
    service.routes["/v1/attestation"] = _honest_attestation(enclave)
    outputs = b'{"outputs": {"\\ud800": {"dtype": "int8", "shape": [1], "data": "AQ=="}}, "receipt": ""}'
    service.routes["/v1/infer"] = lambda query: (200, outputs)
    with _client(service, enclave) as client, pytest.raises((ClientError, VerificationError)) as caught:
        client.infer("m", INPUTS)
    assert caught.value.code in {"SERVICE_ERROR", "RESPONSE_MALFORMED"}


def test_response_integer_beyond_the_int_string_limit_is_a_typed_refusal(
    service: HostileService, enclave: ReceiptEnclave
) -> None:
    service.routes["/v1/attestation"] = lambda query: (200, b'{"document": ' + b"9" * 5000 + b"}")
    with _client(service, enclave) as client, pytest.raises(ClientError) as caught:
        client.attest()
    assert caught.value.code == "SERVICE_ERROR"
