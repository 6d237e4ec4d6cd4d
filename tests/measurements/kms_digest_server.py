"""A loopback HTTP server speaking the AWS KMS JSON protocol for GetPublicKey and Sign with the
semantics AWS documents for ``MessageType=DIGEST`` (sign the given digest as is), which moto
5.2.5 lacks. It exists so the positive KMS signing path can be exercised over real HTTP; it
refuses RAW messages and digests of the wrong length the way KMS does (ValidationException)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

KEY_ID = "11111111-2222-3333-4444-555555555555"


class _Handler(BaseHTTPRequestHandler):
    key: ec.EllipticCurvePrivateKey
    requests: list[dict[str, Any]]

    def log_message(self, *_: Any) -> None:
        return

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        target = self.headers.get("X-Amz-Target", "")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        self.requests.append({"target": target, **body})
        if body.get("KeyId") != KEY_ID:
            self._answer(400, {"__type": "NotFoundException", "message": "no such key"})
        elif target.endswith("GetPublicKey"):
            der = self.key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            self._answer(200, {"KeyId": KEY_ID, "PublicKey": base64.b64encode(der).decode(), "KeySpec": "ECC_NIST_P384",
                               "KeyUsage": "SIGN_VERIFY", "SigningAlgorithms": ["ECDSA_SHA_384"]})  # fmt: skip
        elif target.endswith("Sign"):
            message = base64.b64decode(body["Message"])
            if body.get("MessageType") != "DIGEST" or len(message) != 48:
                self._answer(400, {"__type": "ValidationException", "message": "expected a 48-byte DIGEST"})
                return
            signature = self.key.sign(message, ec.ECDSA(Prehashed(hashes.SHA384())))
            self._answer(200, {"KeyId": KEY_ID, "Signature": base64.b64encode(signature).decode(),
                               "SigningAlgorithm": "ECDSA_SHA_384"})  # fmt: skip
        else:
            self._answer(400, {"__type": "UnsupportedOperationException", "message": target})


@contextmanager
def kms_digest_server() -> Iterator[tuple[str, ec.EllipticCurvePrivateKey, list[dict[str, Any]]]]:
    key = ec.generate_private_key(ec.SECP384R1())
    requests: list[dict[str, Any]] = []
    handler = type("Handler", (_Handler,), {"key": key, "requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", key, requests
    finally:
        server.shutdown()
        server.server_close()
