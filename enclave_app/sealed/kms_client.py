"""KMS ``Decrypt`` with a ``Recipient`` from inside the enclave: HTTPS to ``kms.REGION.amazonaws.com`` over a socket
to the parent's vsock proxy (``vsock:3:8000``) or, in tests, a TCP forwarder. TLS is end to end with KMS (the
proxy forwards bytes), so the certificate is checked against the regional host name whatever the transport, and
chained to the pinned Amazon roots (or ``--kms-ca-file``)."""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trustdial_verifier.unstable.decoding import strict_json

from enclave_app.addresses import Address
from enclave_app.sealed.credentials import AwsCredentials
from enclave_app.sealed.errors import SealedModelError
from enclave_app.sealed.kms_roots import KMS_ROOTS_PEM
from enclave_app.sealed.sigv4 import sign_post
from enclave_app.sealed.transport import connect as connect_socket

MAX_RESPONSE_BYTES = 1024 * 1024
#: KMS error types with a code of their own; every other one is KMS_ERROR
KMS_ERROR_CODES = {
    "AccessDeniedException": "KMS_ACCESS_DENIED",
    "ExpiredTokenException": "KMS_CREDENTIALS_EXPIRED",
    "InvalidCiphertextException": "KMS_INVALID_CIPHERTEXT",
    "IncorrectKeyException": "KMS_INVALID_CIPHERTEXT",
    "InvalidSignatureException": "KMS_SIGNATURE_REJECTED",
    "UnrecognizedClientException": "KMS_SIGNATURE_REJECTED",
    "NotFoundException": "KMS_KEY_NOT_FOUND",
}


class _ProxiedHttps(http.client.HTTPSConnection):
    """An HTTPS connection whose TCP leg is a socket to ``address`` (the proxy), not to the host name."""

    def __init__(self, host: str, address: Address, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, 443, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        raw = connect_socket(self._address, self.timeout if isinstance(self.timeout, float | int) else 30.0)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


@dataclass(frozen=True)
class KmsEndpoint:
    address: Address
    region: str
    ca_file: Path | None = None  # None: the pinned Amazon roots (enclave_app.sealed.kms_roots)
    timeout: float = 30.0

    @property
    def host(self) -> str:
        return f"kms.{self.region}.amazonaws.com"

    def tls_context(self) -> ssl.SSLContext:
        if self.ca_file is not None:
            return ssl.create_default_context(cafile=str(self.ca_file))
        return ssl.create_default_context(cadata=KMS_ROOTS_PEM)

    def call(
        self,
        operation: str,
        request: Mapping[str, Any],
        credentials: AwsCredentials,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> dict[str, Any]:
        """One signed ``TrentService.<operation>`` call; the decoded JSON answer, or a typed refusal."""
        body = json.dumps(dict(request)).encode()
        headers = sign_post(
            host=self.host,
            headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"TrentService.{operation}"},
            body=body,
            access_key_id=credentials.access_key_id,
            secret_access_key=credentials.secret_access_key,
            session_token=credentials.session_token,
            region=self.region,
            service="kms",
            now=clock(),
        )
        connection = _ProxiedHttps(self.host, self.address, self.tls_context(), self.timeout)
        try:
            connection.request("POST", "/", body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read(MAX_RESPONSE_BYTES + 1)
            status = response.status
        except ssl.SSLError as err:
            raise SealedModelError("KMS_TLS", f"TLS with {self.host} through {self.address} failed: {err}") from err
        except (OSError, http.client.HTTPException) as err:
            raise SealedModelError(
                "KMS_UNREACHABLE", f"cannot reach {self.host} through {self.address}: {err}"
            ) from err
        finally:
            connection.close()
        if len(raw) > MAX_RESPONSE_BYTES:
            raise SealedModelError("KMS_ERROR", f"KMS answered more than {MAX_RESPONSE_BYTES} bytes")
        try:
            answer = strict_json.loads(raw or b"{}", max_bytes=MAX_RESPONSE_BYTES)
        except strict_json.JsonError as err:
            raise SealedModelError(
                "KMS_ERROR",
                f"KMS answered HTTP {status} with a body that is not strict JSON: {err.reason} ({err.code})",
            ) from None
        if not isinstance(answer, dict):
            raise SealedModelError("KMS_ERROR", f"KMS answered HTTP {status} with JSON that is not an object")
        if status != 200:
            kind = str(answer.get("__type", "")).rpartition("#")[2]
            message = answer.get("message") or answer.get("Message") or ""
            raise SealedModelError(KMS_ERROR_CODES.get(kind, "KMS_ERROR"), f"KMS {operation}: {kind}: {message}")
        return answer


def decrypt_for_recipient(
    endpoint: KmsEndpoint,
    credentials: AwsCredentials,
    *,
    ciphertext_blob: bytes,
    key_id: str,
    encryption_context: Mapping[str, str],
    attestation_document: bytes,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> bytes:
    """``Decrypt`` with ``Recipient={RSAES_OAEP_SHA_256, document}``; returns ``CiphertextForRecipient``."""
    answer = endpoint.call(
        "Decrypt",
        {
            "CiphertextBlob": base64.b64encode(ciphertext_blob).decode(),
            "KeyId": key_id,
            "EncryptionContext": dict(encryption_context),
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
            "Recipient": {
                "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
                "AttestationDocument": base64.b64encode(attestation_document).decode(),
            },
        },
        credentials,
        clock,
    )
    if answer.get("Plaintext") is not None:
        raise SealedModelError("KMS_PLAINTEXT_RETURNED", "KMS returned a Plaintext to an attested request; refusing")
    encoded = answer.get("CiphertextForRecipient")
    if not isinstance(encoded, str):
        raise SealedModelError("KMS_ERROR", "KMS Decrypt answered without CiphertextForRecipient")
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error as err:
        raise SealedModelError("KMS_ERROR", f"CiphertextForRecipient is not base64: {err}") from err
