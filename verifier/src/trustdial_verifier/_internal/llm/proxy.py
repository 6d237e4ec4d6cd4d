"""The verifying proxy: an OpenAI-compatible endpoint on 127.0.0.1 that releases nothing it has not verified.

Any OpenAI SDK app points its ``base_url`` here. For each completion the proxy makes sure it holds a receipt key
attested with a fresh nonce (re-attesting after ``attestation_ttl`` seconds or when a receipt names another key),
sends the request upstream with a fresh nonce of its own (``X-Trustdial-Nonce``), and checks the answer against
the expected PCRs and bundle digests (:mod:`trustdial_verifier._internal.llm.verify`) before forwarding it. A stream
is checked event
by event: an event is forwarded only after its own receipt verified, so an app never sees a token that was not
signed in the enclave; on any failure the stream ends with an error event (the ``openai`` client raises
``APIError``) and a plain response becomes an HTTP 502 with OpenAI's error shape. Verified responses carry the
header ``X-Trustdial-Verified: true`` and the body field ``trustdial_verified: true`` (on every stream event).

Needs the ``client`` extra (httpx). Standard library HTTP server: one thread per connection.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509

from trustdial_verifier._internal import strict_json
from trustdial_verifier._internal.client import AttestedKey, Client, ExpectedEnclave
from trustdial_verifier._internal.llm.request import Endpoint, RequestRefused, parse_request
from trustdial_verifier._internal.llm.verify import ChatExpectation, CompletionError, StreamVerifier, verify_completion
from trustdial_verifier.errors import InputError, VerificationError

NONCE_HEADER = "X-Trustdial-Nonce"
VERIFIED_HEADER = "X-Trustdial-Verified"
MAX_BODY = 1 << 20
ROUTES = {"/v1/chat/completions": Endpoint.CHAT, "/v1/completions": Endpoint.COMPLETIONS}


@dataclass(frozen=True)
class ProxySettings:
    upstream: str
    pcrs: Mapping[int, bytes]
    bundles: Mapping[str, bytes]
    root: x509.Certificate | None = None
    allow_debug: bool = False
    attestation_ttl: float = 300.0
    timeout: float = 120.0


class VerifyingProxy:
    def __init__(self, settings: ProxySettings) -> None:
        import httpx

        self.settings = settings
        self.http = httpx.Client(base_url=settings.upstream.rstrip("/"), timeout=settings.timeout)
        expected = ExpectedEnclave(pcrs=settings.pcrs, models=settings.bundles, root=settings.root,
                                   allow_debug=settings.allow_debug)  # fmt: skip
        self.attestor = Client(settings.upstream, expected, attestation_ttl=settings.attestation_ttl, http=self.http)
        self._lock = threading.Lock()
        self._highest: dict[bytes, int] = {}

    def key(self, *, renew: bool = False) -> AttestedKey:
        return self.attestor.attest() if renew else self.attestor.attested_key()

    def expectation(self, key: AttestedKey, endpoint: Endpoint, body: dict[str, Any], nonce: bytes) -> ChatExpectation:
        with self._lock:
            floor = self._highest.get(key.attestation_digest, 0) + 1
        bundle = self.settings.bundles[body["model"]]
        return ChatExpectation(
            public_key=key.public_key, attestation_digest=key.attestation_digest, bundles=frozenset({bundle}),
            endpoint=endpoint, request=body, nonce=nonce, min_seq=floor, not_before_ms=key.binding_timestamp_ms,
        )  # fmt: skip

    def saw(self, key: AttestedKey, seq: int) -> None:
        with self._lock:
            self._highest[key.attestation_digest] = max(self._highest.get(key.attestation_digest, 0), seq)

    def close(self) -> None:
        self.http.close()


def _error_body(code: str, message: str, kind: str = "verification_error", param: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the app's own logs say what it asked

    def _send(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_GET(self) -> None:
        if self.path != "/v1/models":
            self._send(404, _error_body("not_found", f"no route {self.path}", "invalid_request_error"))
            return
        try:
            upstream = self.server.proxy.http.get("/v1/models")
        except Exception as err:  # noqa: BLE001 - any transport failure is the same answer
            self._send(502, _error_body("upstream_unreachable", str(err), "server_error"))
            return
        self._send(upstream.status_code, upstream.content)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (a malformed request line or header, an unsupported method, a
        header too long) in OpenAI's error shape instead of an HTML page; the connection is then closed."""
        status = HTTPStatus(code) if code in HTTPStatus._value2member_map_ else HTTPStatus.BAD_REQUEST
        client_side = status < 500 or status in (HTTPStatus.NOT_IMPLEMENTED, HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)
        kind = "invalid_request_error" if client_side else "server_error"
        name = status.phrase.lower().replace(" ", "_").replace("-", "_")
        body = _error_body(name, message or status.phrase, kind)
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # an unparsable request line: answer with a status line all the same
            self.request_version = "HTTP/1.0"
        self.send_response(status.value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and status.value >= 200 and status.value not in (204, 304):
            self.wfile.write(body)

    def _refuse(self, status: int, code: str, message: str) -> None:
        self.close_connection = True  # the body was not read: the stream cannot carry another request
        self._send(status, _error_body(code, message, "invalid_request_error"), {"Connection": "close"})

    def _read_body(self) -> bytes | None:
        """The request body, or None after a refusal: a JSON body of known length (no chunked uploads)."""
        content_type = self.headers.get("Content-Type")
        if content_type is not None and content_type.split(";")[0].strip().lower() != "application/json":
            self._refuse(415, "unsupported_media_type", f"the body must be application/json, not {content_type!r}")
            return None
        if self.headers.get("Transfer-Encoding") is not None:
            self._refuse(411, "length_required", "send the body with a Content-Length (no Transfer-Encoding)")
            return None
        length = self.headers.get("Content-Length")
        if length is None:
            self._refuse(411, "length_required", "a request body with a Content-Length is required")
            return None
        if not length.isascii() or not length.isdigit() or len(length) > 12:
            self._refuse(400, "bad_request", f"Content-Length {length[:40]!r} is not a byte count")
            return None
        if int(length) > MAX_BODY:
            self._refuse(413, "body_too_large", f"a body of at most {MAX_BODY} bytes is accepted, not {int(length)}")
            return None
        raw = self.rfile.read(int(length))
        if len(raw) != int(length):
            self._refuse(400, "bad_request", f"the body ended after {len(raw)} of {int(length)} bytes")
            return None
        return raw

    def do_POST(self) -> None:
        endpoint = ROUTES.get(self.path)
        if endpoint is None:
            self._refuse(404, "not_found", f"no route {self.path}")
            return
        raw = self._read_body()
        if raw is None:
            return
        try:
            body = strict_json.loads(raw, max_bytes=MAX_BODY)
            parsed = parse_request(endpoint, body)
        except strict_json.JsonError as err:
            reason = f"body is not JSON the proxy accepts: {err.reason} ({err.code})"
            self._send(400, _error_body("invalid_json", reason, "invalid_request_error"))
            return
        except RequestRefused as err:
            self._send(err.status, _error_body(err.code, err.reason, "invalid_request_error", err.param))
            return
        proxy = self.server.proxy
        if parsed.model not in proxy.settings.bundles:
            self._send(404, _error_body("model_not_found", f"no expected bundle digest for model {parsed.model!r}",
                                        "invalid_request_error", "model"))  # fmt: skip
            return
        try:
            key = proxy.key()
        except (VerificationError, InputError) as err:
            self._send(502, _error_body(err.code, f"the enclave's attestation was refused: {err.reason}"))
            return
        nonce = os.urandom(32)
        if parsed.stream:
            self._stream(endpoint, body, key, nonce)
        else:
            self._plain(endpoint, body, key, nonce)

    def _upstream_error(self, status: int, content: bytes) -> None:
        # an error answer carries no tokens: passed on as it is (an OpenAI error body from the gateway)
        self._send(status, content)

    def _plain(self, endpoint: Endpoint, body: dict[str, Any], key: AttestedKey, nonce: bytes) -> None:
        proxy = self.server.proxy
        try:
            upstream = proxy.http.post(self.path, json=body, headers={NONCE_HEADER: nonce.hex()})
        except Exception as err:  # noqa: BLE001 - any transport failure is the same answer
            self._send(502, _error_body("upstream_unreachable", str(err), "server_error"))
            return
        if upstream.status_code != 200:
            self._upstream_error(upstream.status_code, upstream.content)
            return
        try:
            response = strict_json.loads(upstream.content)  # the host is untrusted: a bounded, strict reader
            if not isinstance(response, dict):
                raise CompletionError("LLM_RESPONSE_MALFORMED", "expected a JSON object")
            try:
                verified = verify_completion(response, proxy.expectation(key, endpoint, body, nonce))
            except VerificationError as err:
                if err.code not in ("RECEIPT_SIGNATURE", "RECEIPT_ATTESTATION_MISMATCH"):
                    raise
                renewed = proxy.key(renew=True)  # the enclave may have restarted with a new key
                if renewed.public_key == key.public_key:
                    raise
                key = renewed
                verified = verify_completion(response, proxy.expectation(key, endpoint, body, nonce))
        except (VerificationError, InputError, ValueError) as err:
            code = getattr(err, "code", "LLM_RESPONSE_MALFORMED")
            self._send(502, _error_body(code, f"the response was refused: {err}"))
            return
        proxy.saw(key, verified.statement.seq)
        response["trustdial_verified"] = True
        self._send(200, json.dumps(response).encode(), {VERIFIED_HEADER: "true"})

    def _stream(self, endpoint: Endpoint, body: dict[str, Any], key: AttestedKey, nonce: bytes) -> None:
        proxy = self.server.proxy
        try:
            with proxy.http.stream("POST", self.path, json=body, headers={NONCE_HEADER: nonce.hex()}) as upstream:
                if upstream.status_code != 200:
                    self._upstream_error(upstream.status_code, upstream.read())
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header(VERIFIED_HEADER, "true")
                self.end_headers()
                self._relay(upstream.iter_lines(), StreamVerifier(proxy.expectation(key, endpoint, body, nonce)), key)
        except Exception as err:  # noqa: BLE001 - the upstream failed mid-stream: the app gets an error, not a hang
            if not self.wfile.closed:
                try:
                    self._chunk(b"data: " + _error_body("upstream_failed", f"the upstream failed: {err}") + b"\n\n")
                    self._chunk(b"")
                except OSError:
                    return

    def _relay(self, lines: Iterator[str], verifier: StreamVerifier, key: AttestedKey) -> None:
        try:
            for line in lines:
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    result = verifier.finish()
                    self.server.proxy.saw(key, result.statement.seq)
                    self._chunk(b"data: [DONE]\n\n")
                    self._chunk(b"")
                    return
                event = strict_json.loads(data)  # JsonError (a VerificationError) ends the stream with its code
                if not isinstance(event, dict):
                    raise CompletionError("LLM_RESPONSE_MALFORMED", "an event is not a JSON object")
                verifier.check_event(event)
                event["trustdial_verified"] = True
                self._chunk(b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n")
            verifier.finish()  # ended without [DONE]: truncated
            raise CompletionError("LLM_STREAM_TRUNCATED", "the stream ended without [DONE]")
        except (VerificationError, InputError) as err:
            self._chunk(b"data: " + _error_body(err.code, f"the stream was refused: {err.reason}") + b"\n\n")
            self._chunk(b"")


class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], proxy: VerifyingProxy) -> None:
        super().__init__(address, Handler)
        self.proxy = proxy


def serve(settings: ProxySettings, host: str = "127.0.0.1", port: int = 0) -> ProxyServer:
    """A bound (not yet serving) proxy server; call ``serve_forever`` on it."""
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise InputError("PROXY_NOT_LOOPBACK", f"the verifying proxy listens on loopback only, not {host!r}")
    return ProxyServer((host, port), VerifyingProxy(settings))
