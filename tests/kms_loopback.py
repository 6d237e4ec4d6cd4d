"""A KMS-compatible HTTPS server and an IMDSv2 stand-in on 127.0.0.1, for the sealed-model tests (moto does not
implement ``Decrypt`` with ``Recipient``). Written for the tests; its checks come from independent producers:

* SigV4 is recomputed with botocore's ``SigV4Auth`` (not the enclave's signer) from the received bytes;
* the attestation document is verified with ``trustdial_verifier._internal.attestation.verify`` against the trust
  root the test passes (the
  simulated NSM's), with ``MaxAge``; the key policy evaluated is the one the CDK app synthesized (a small model of
  IAM evaluation: explicit Deny wins, then any Allow; ``StringEqualsIgnoreCase``/``StringNotEqualsIgnoreCase`` with
  IAM's missing-key semantics), with the request's ``kms:RecipientAttestation:PCRn`` taken from the document;
* ``CiphertextForRecipient`` is produced by ``openssl cms -encrypt`` (subprocess) to a certificate carrying the
  document's public key: RSAES-OAEP-SHA-256 key transport, AES-256-CBC (BER, streamed, as KMS sends) or AES-256-GCM.

Credentials are issued by the server's state (the IMDS stand-in hands them out), so the server knows each access
key's secret, session token, principal and expiry.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import ipaddress
import json
import os
import re
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

ACCOUNT = "111122223333"
REGION = "us-east-1"
KMS_HOST = f"kms.{REGION}.amazonaws.com"
HOST_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/trustdial-test-host"
OPERATOR_ARN = f"arn:aws:iam::{ACCOUNT}:role/trustdial-test-operator"
ALIAS = "alias/trustdial-test-weights"
AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<ak>[A-Z0-9]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9]+)"
    r"/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;-]+), ?Signature=(?P<signature>[0-9a-f]{64})"
)
BLOB_MAGIC = b"TDKMS1"


class KmsFault(Exception):
    def __init__(self, kind: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status


@dataclass
class Issued:
    secret: str
    token: str
    principal: str
    expires: datetime


@dataclass
class LoopbackCa:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls) -> LoopbackCa:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trustdial test CA (KMS stand-in)")])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def issue(self, public_key: Any, common_name: str, *, dns: list[str] | None = None) -> x509.Certificate:
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=6))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        if dns is not None:
            names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
            names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass
class KeyPolicy:
    """Statements of a synthesized ``AWS::KMS::Key`` policy, principals resolved for this account."""

    statements: list[dict[str, Any]]
    roles: dict[str, str]  # logical id of an AWS::IAM::Role -> its ARN here

    def _covers(self, statement: dict[str, Any], principal: str) -> bool:
        for entry in as_list(statement["Principal"]["AWS"]):
            if entry == "*" or entry == principal:
                return True
            if isinstance(entry, dict) and "Fn::GetAtt" in entry:
                if self.roles.get(entry["Fn::GetAtt"][0]) == principal:
                    return True
            elif isinstance(entry, dict) and "Fn::Join" in entry and entry["Fn::Join"][1][-1] == ":root":
                if principal.startswith(f"arn:aws:iam::{ACCOUNT}:"):  # the root delegates to IAM; IAM grants kms:*
                    return True
            elif not isinstance(entry, str):
                raise KmsFault("KMSInternalException", f"principal form not modelled: {entry!r}", 500)
        return False

    @staticmethod
    def _action(statement: dict[str, Any], action: str) -> bool:
        if "Action" in statement:
            return any(fnmatch.fnmatchcase(action, pattern) for pattern in as_list(statement["Action"]))
        return not any(fnmatch.fnmatchcase(action, pattern) for pattern in as_list(statement["NotAction"]))

    @staticmethod
    def _conditions(statement: dict[str, Any], context: dict[str, str]) -> bool:
        for operator, keys in statement.get("Condition", {}).items():
            for key, values in keys.items():
                wanted = {str(v).lower() for v in as_list(values)}
                present = context.get(key)
                if operator == "StringEqualsIgnoreCase":
                    if present is None or present.lower() not in wanted:
                        return False
                elif operator == "StringNotEqualsIgnoreCase":
                    if present is not None and present.lower() in wanted:
                        return False
                else:
                    raise KmsFault("KMSInternalException", f"condition operator not modelled: {operator}", 500)
        return True

    def allows(self, principal: str, action: str, context: dict[str, str]) -> bool:
        matching = [
            s
            for s in self.statements
            if self._covers(s, principal) and self._action(s, action) and self._conditions(s, context)
        ]
        if any(s["Effect"] == "Deny" for s in matching):
            return False
        return any(s["Effect"] == "Allow" for s in matching)


@dataclass
class KmsState:
    policy: KeyPolicy
    attestation_root: Callable[[], x509.Certificate]
    ca: LoopbackCa = field(default_factory=LoopbackCa.create)
    key_id: str = "0a1b2c3d-0000-4000-8000-00000000beef"
    master_key: bytes = field(default_factory=lambda: os.urandom(32))
    content_cipher: str = "-aes256"  # or "-aes-256-gcm"
    tamper_recipient_message: bool = False
    credentials: dict[str, Issued] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def key_arn(self) -> str:
        return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{self.key_id}"

    def issue(self, principal: str, lifetime: timedelta) -> tuple[str, Issued]:
        access_key = "ASIA" + os.urandom(8).hex().upper()
        issued = Issued(os.urandom(20).hex(), base64.b64encode(os.urandom(48)).decode(), principal,
                        datetime.now(UTC).replace(microsecond=0) + lifetime)  # fmt: skip
        with self.lock:
            self.credentials[access_key] = issued
        return access_key, issued

    def expire_all(self) -> None:
        """KMS's view: every issued session token is now expired (whatever the holder believes)."""
        with self.lock:
            for issued in self.credentials.values():
                issued.expires = datetime.now(UTC) - timedelta(seconds=1)

    # -- SigV4 (botocore as the oracle) ------------------------------------------------------------------------
    def authenticate(self, headers: Any, body: bytes) -> Issued:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        match = AUTH.fullmatch(headers.get("Authorization", ""))
        if match is None:
            raise KmsFault("IncompleteSignatureException", "Authorization header is not SigV4")
        issued = self.credentials.get(match["ak"])
        if issued is None:
            raise KmsFault("UnrecognizedClientException", "The security token included in the request is invalid.")
        if headers.get("X-Amz-Security-Token") != issued.token:
            raise KmsFault("UnrecognizedClientException", "The security token included in the request is invalid.")
        amz_date = headers.get("X-Amz-Date", "")
        try:
            when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError as err:
            raise KmsFault("IncompleteSignatureException", "X-Amz-Date missing or malformed") from err
        if abs(datetime.now(UTC) - when) > timedelta(minutes=5) or match["date"] != amz_date[:8]:
            raise KmsFault("InvalidSignatureException", "Signature expired or scope date mismatch")
        if match["region"] != REGION or match["service"] != "kms":
            raise KmsFault("InvalidSignatureException", "Credential should be scoped to a valid region/service")
        signed = match["signed"].split(";")
        if "host" not in signed or "x-amz-date" not in signed or "x-amz-security-token" not in signed:
            raise KmsFault("InvalidSignatureException", "host, x-amz-date and the session token must be signed")
        subset = {name: headers[name] for name in signed if headers.get(name) is not None}
        if len(subset) != len(signed):
            raise KmsFault("InvalidSignatureException", "a signed header is missing")
        request = AWSRequest(method="POST", url=f"https://{headers['Host']}/", data=body, headers=subset)
        request.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(match["ak"], issued.secret, issued.token), "kms", REGION)
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        if expected != match["signature"]:
            raise KmsFault("InvalidSignatureException", "The request signature we calculated does not match")
        if datetime.now(UTC) >= issued.expires:
            raise KmsFault("ExpiredTokenException", "The security token included in the request is expired")
        return issued

    # -- the key -------------------------------------------------------------------------------------------------
    def _resolve(self, key_id: object) -> None:
        if key_id not in (self.key_id, self.key_arn, ALIAS, f"arn:aws:kms:{REGION}:{ACCOUNT}:{ALIAS}"):
            raise KmsFault("NotFoundException", f"Key '{key_id}' does not exist")

    @staticmethod
    def _context_aad(context: object) -> bytes:
        if not isinstance(context, dict) or not all(isinstance(v, str) for v in context.values()):
            raise KmsFault("ValidationException", "EncryptionContext must map strings to strings")
        return json.dumps(context, sort_keys=True, separators=(",", ":")).encode()

    def generate_data_key(self, issued: Issued, request: dict[str, Any]) -> dict[str, Any]:
        self._resolve(request.get("KeyId"))
        if request.get("KeySpec") != "AES_256":
            raise KmsFault("ValidationException", "this stand-in implements KeySpec AES_256 only")
        if not self.policy.allows(issued.principal, "kms:GenerateDataKey", {}):
            raise KmsFault("AccessDeniedException", f"{issued.principal} is not authorized to GenerateDataKey")
        plaintext = os.urandom(32)
        nonce = os.urandom(12)
        sealed = AESGCM(self.master_key).encrypt(
            nonce, plaintext, self._context_aad(request.get("EncryptionContext", {}))
        )
        blob = BLOB_MAGIC + self.key_id.encode() + nonce + sealed
        return {"KeyId": self.key_arn, "Plaintext": base64.b64encode(plaintext).decode(),
                "CiphertextBlob": base64.b64encode(blob).decode()}  # fmt: skip

    def decrypt(self, issued: Issued, request: dict[str, Any]) -> dict[str, Any]:
        from cryptography.exceptions import InvalidTag

        try:
            blob = base64.b64decode(request.get("CiphertextBlob", ""), validate=True)
        except (binascii.Error, TypeError) as err:
            raise KmsFault("InvalidCiphertextException", "CiphertextBlob is not base64") from err
        prefix = BLOB_MAGIC + self.key_id.encode()
        if not blob.startswith(prefix) or len(blob) < len(prefix) + 12 + 16:
            raise KmsFault("InvalidCiphertextException", "")
        if request.get("KeyId") is not None:
            self._resolve(request["KeyId"])
        context: dict[str, str] = {}
        recipient = request.get("Recipient")
        if recipient is not None:
            context = self._recipient_context(recipient)
        if not self.policy.allows(issued.principal, "kms:Decrypt", context):
            raise KmsFault("AccessDeniedException", f"{issued.principal} is not authorized to Decrypt (key policy)")
        nonce, sealed = blob[len(prefix) : len(prefix) + 12], blob[len(prefix) + 12 :]
        try:
            plaintext = AESGCM(self.master_key).decrypt(
                nonce, sealed, self._context_aad(request.get("EncryptionContext", {}))
            )
        except InvalidTag as err:
            raise KmsFault("InvalidCiphertextException", "") from err
        if recipient is None:
            return {"KeyId": self.key_arn, "Plaintext": base64.b64encode(plaintext).decode()}
        message = self.recipient_message(context["__public_key"], plaintext)
        if self.tamper_recipient_message:
            message = message[:-40] + bytes([message[-40] ^ 0x01]) + message[-39:]
        return {"KeyId": self.key_arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "CiphertextForRecipient": base64.b64encode(message).decode()}  # fmt: skip

    def _recipient_context(self, recipient: object) -> dict[str, str]:
        from trustdial_verifier._internal.attestation.verify import AttestationError, MaxAge, verify_attestation

        if not isinstance(recipient, dict) or recipient.get("KeyEncryptionAlgorithm") != "RSAES_OAEP_SHA_256":
            raise KmsFault("ValidationException", "Recipient.KeyEncryptionAlgorithm must be RSAES_OAEP_SHA_256")
        try:
            document = base64.b64decode(recipient.get("AttestationDocument", ""), validate=True)
            verified = verify_attestation(document, MaxAge(300), root=self.attestation_root(), allow_debug=True)
        except (binascii.Error, TypeError, AttestationError) as err:
            raise KmsFault("ValidationException", f"invalid attestation document: {err}") from err
        if verified.public_key is None:
            raise KmsFault("ValidationException", "the attestation document carries no public key")
        context = {f"kms:RecipientAttestation:PCR{index}": value.hex() for index, value in verified.pcrs.items()}
        context["kms:RecipientAttestation:ImageSha384"] = verified.pcrs[0].hex()
        context["__public_key"] = base64.b64encode(verified.public_key).decode()  # not a condition key
        return context

    def recipient_message(self, public_key_b64: str, plaintext: bytes) -> bytes:
        """``openssl cms -encrypt`` to a certificate holding the attested public key (an independent producer)."""
        public_key = serialization.load_der_public_key(base64.b64decode(public_key_b64))
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise KmsFault("ValidationException", "the attested public key is not RSA")
        return openssl_cms_encrypt(self.ca.issue(public_key, "kms recipient"), plaintext, self.content_cipher)


def openssl_cms_encrypt(recipient: x509.Certificate, plaintext: bytes, cipher: str, *, stream: bool = True) -> bytes:
    with tempfile.TemporaryDirectory(prefix="trustdial-cms-") as work:
        cert, data, out = Path(work) / "recipient.pem", Path(work) / "data.bin", Path(work) / "out.der"
        cert.write_bytes(recipient.public_bytes(serialization.Encoding.PEM))
        data.write_bytes(plaintext)
        command = ["openssl", "cms", "-encrypt", "-binary", "-in", str(data), "-recip", str(cert), "-keyid",
                   "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256", cipher,
                   "-outform", "DER", "-out", str(out)]  # fmt: skip
        if stream:
            command.insert(3, "-stream")
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        return out.read_bytes()


def _handler(state: KmsState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

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
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(min(length, 1 << 20))
            target = self.headers.get("X-Amz-Target", "")
            entry: dict[str, Any] = {"target": target, "host": self.headers.get("Host")}
            try:
                issued = state.authenticate(self.headers, body)
                request = json.loads(body)
                entry["principal"] = issued.principal
                if target == "TrentService.GenerateDataKey":
                    answer = state.generate_data_key(issued, request)
                elif target == "TrentService.Decrypt":
                    entry["recipient"] = request.get("Recipient") is not None
                    answer = state.decrypt(issued, request)
                else:
                    raise KmsFault("UnsupportedOperationException", target)
            except Exception as error:  # noqa: BLE001 (a stand-in bug answers 500 instead of dropping the connection)
                fault = error if isinstance(error, KmsFault) else KmsFault("KMSInternalException", repr(error), 500)
                entry["error"] = fault.kind
                state.log.append(entry)
                self._answer(fault.status, {"__type": fault.kind, "message": fault.message})
                return
            entry["ok"] = True
            state.log.append(entry)
            self._answer(200, answer)

    return Handler


@contextmanager
def kms_server(state: KmsState) -> Iterator[tuple[int, Path]]:
    """Serve ``state`` over TLS on 127.0.0.1 (certificate for kms.us-east-1.amazonaws.com and 127.0.0.1, from
    ``state.ca``); yields the port and the CA bundle path."""
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = state.ca.issue(server_key.public_key(), KMS_HOST, dns=[KMS_HOST])
    with tempfile.TemporaryDirectory(prefix="trustdial-kms-") as work:
        chain, key_file, ca_file = Path(work) / "server.pem", Path(work) / "server.key", Path(work) / "ca.pem"
        chain.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))  # fmt: skip
        ca_file.write_bytes(state.ca.pem())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, key_file)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server.server_address[1], ca_file
        finally:
            server.shutdown()
            server.server_close()


@dataclass
class Imds:
    """IMDSv2 for one role: each credentials fetch issues a fresh set from ``state`` valid for ``lifetime``."""

    state: KmsState
    principal: str = HOST_ROLE_ARN
    lifetime: timedelta = timedelta(hours=6)
    role_name: str = "trustdial-test-host"
    tokens: set[str] = field(default_factory=set)
    fetches: int = 0


@contextmanager
def imds_server(imds: Imds) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            return

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self) -> None:
            if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                self._send(400, b"")
                return
            token = hashlib.sha256(os.urandom(16)).hexdigest()
            imds.tokens.add(token)
            self._send(200, token.encode())

        def do_GET(self) -> None:
            if self.headers.get("X-aws-ec2-metadata-token") not in imds.tokens:
                self._send(401, b"")  # IMDSv2 only: no token, no answer
                return
            base = "/latest/meta-data/iam/security-credentials/"
            if self.path == base:
                self._send(200, imds.role_name.encode())
            elif self.path == base + imds.role_name:
                access_key, issued = imds.state.issue(imds.principal, imds.lifetime)
                imds.fetches += 1
                document = {"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": access_key,
                            "SecretAccessKey": issued.secret, "Token": issued.token,
                            "Expiration": issued.expires.strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
                self._send(200, json.dumps(document).encode())
            else:
                self._send(404, b"")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
