"""The app developer's client: it returns outputs only after their receipt verifies.

>>> client = Client("http://gateway:8080", expected=ExpectedEnclave(pcrs={0: p0, 1: p1, 2: p2},
...                                                                 models={"mlp": mlp_sha256}))
>>> outputs = client.infer("mlp", {"x": Tensor.from_array(x)}).outputs

On first use (and again after ``attestation_ttl`` seconds) the client sends a fresh random
nonce to ``/v1/attestation`` and verifies both returned documents against the expected PCRs:
the fresh one proves the enclave holds the receipt key now, the binding one is the document
every receipt names. Each call then sends its own fresh nonce and checks the receipt: seal
under the attested key, inclusion path, model, input and output commitments over the tensors
actually sent and received, the echoed nonce (replays fail), and a sequence number above every
one this client had verified before sending (rollbacks fail). Any mismatch raises
:class:`~trustdial_verifier.errors.VerificationError`; transport problems raise :class:`ClientError`.

``timeout`` is the total budget of one call (``attest``, ``infer``): connecting,
sending, reading the response (a server dripping bytes slowly does not extend it), re-attesting
and verifying all count against it; when it runs out the call raises ``ClientError``
(``DEADLINE_EXCEEDED``). Responses are read through the verifier's strict JSON reader and capped
at :data:`MAX_RESPONSE_BYTES`.

Needs the ``client`` extra (httpx), imported when a client is created.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from trustdial_verifier._internal import strict_json
from trustdial_verifier._internal.attestation.verify import AllOf, NonceEquals, PcrsEqual, verify_attestation
from trustdial_verifier._internal.receipts.attested import BINDING_USER_DATA, verify_binding_document
from trustdial_verifier._internal.receipts.errors import ReceiptError
from trustdial_verifier._internal.receipts.model import Statement
from trustdial_verifier._internal.receipts.verify import ReceiptExpectation, check_statement, open_receipt
from trustdial_verifier._internal.tensors import Tensor
from trustdial_verifier.errors import InputError, VerificationError, describe_value

NONCE_BYTES = 32
MAX_RESPONSE_BYTES = 64 << 20
_ERROR_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


class ClientError(InputError):
    """The service could not be reached or answered with an error (``code`` from its error body)."""


@dataclass(frozen=True)
class ExpectedEnclave:
    """What the caller trusts: enclave measurements and, per model name, the model's sha256."""

    pcrs: Mapping[int, bytes]
    models: Mapping[str, bytes]
    root: x509.Certificate | None = None
    allow_debug: bool = False

    def __post_init__(self) -> None:
        if not self.pcrs:
            raise InputError("NO_EXPECTED_PCRS", "refusing to trust an enclave without expected PCR values")
        if not self.models:
            raise InputError("NO_EXPECTED_MODELS", "refusing to call models without their expected sha256")


@dataclass(frozen=True)
class Deadline:
    """The end of one call's time budget (``time.monotonic()`` seconds)."""

    at: float
    budget: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def remaining(self, doing: str) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise ClientError("DEADLINE_EXCEEDED", f"the call's budget of {self.budget:g} s ran out before {doing}")
        return left


@dataclass(frozen=True)
class AttestedKey:
    public_key: bytes
    attestation_digest: bytes
    binding_document: bytes
    binding_timestamp_ms: int
    verified_at: float


@dataclass(frozen=True)
class InferenceResult:
    outputs: dict[str, Tensor]
    receipt: bytes
    statement: Statement
    attestation: bytes = field(repr=False)


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ReceiptError("RESPONSE_MALFORMED", f"expected {what} as base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ReceiptError("RESPONSE_MALFORMED", f"{what} is not valid base64") from err


def tensors_to_json(tensors: Mapping[str, Tensor]) -> dict[str, Any]:
    return {
        n: {"dtype": t.dtype, "shape": list(t.shape), "data": base64.b64encode(t.data).decode("ascii")}
        for n, t in tensors.items()
    }


def tensors_from_json(value: Any) -> dict[str, Tensor]:
    if not isinstance(value, dict):
        raise ReceiptError("RESPONSE_MALFORMED", "expected outputs as a map of named tensors")
    out = {}
    for name, item in value.items():
        shown = describe_value(name, 40)
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("shape"), list)
            or not isinstance(item.get("dtype"), str)
        ):
            raise ReceiptError("RESPONSE_MALFORMED", f"tensor {shown} must be {{dtype, shape, data}}")
        out[name] = Tensor(item["dtype"], tuple(item["shape"]), _b64(item.get("data"), f"tensor {shown}"))
    return out


def parse_response(method: str, path: str, status: int, data: bytes) -> dict[str, Any]:
    """A service answer: the JSON object of a 200 response, or the typed error a non-200 one names."""
    try:
        body = strict_json.loads(data, max_bytes=MAX_RESPONSE_BYTES)
    except strict_json.JsonError as err:
        raise ClientError(
            "SERVICE_ERROR", f"{method} {path}: HTTP {status}, body is not strict JSON: {err.reason} ({err.code})"
        ) from None
    if status != 200:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            error = {}
        code = error.get("code")
        raise ClientError(
            code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else "SERVICE_ERROR",
            f"HTTP {status}: {describe_value(error.get('message'), 200)}",
        )
    if not isinstance(body, dict):
        raise ReceiptError("RESPONSE_MALFORMED", f"{method} {path}: expected a JSON object")
    return body


class Client:
    def __init__(
        self,
        url: str,
        expected: ExpectedEnclave,
        *,
        attestation_ttl: float = 300.0,
        timeout: float = 30.0,
        http: Any = None,
    ) -> None:
        import httpx

        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise InputError("BAD_TIMEOUT", f"expected timeout as a positive number of seconds, found {timeout!r}")
        self.expected = expected
        self.attestation_ttl = attestation_ttl
        self.timeout = float(timeout)
        self._http = http or httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        self._key: AttestedKey | None = None
        self._lock = threading.Lock()
        self._highest_seq: dict[bytes, int] = {}

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, deadline: Deadline, **kwargs: Any) -> dict[str, Any]:
        """One HTTP exchange within ``deadline``: it runs in a worker thread so that the caller gets its
        answer when the budget ends, whatever the server does (a stalled or dripping server cannot hold
        the call; the abandoned exchange stops at its next chunk or when its own socket timeout fires)."""
        outcome: list[tuple[int, bytes] | BaseException] = []
        cancelled = threading.Event()

        def exchange() -> None:
            try:
                outcome.append(self._exchange(method, path, deadline, cancelled, kwargs))
            except BaseException as err:  # noqa: BLE001 - handed to the calling thread, which raises it
                outcome.append(err)

        worker = threading.Thread(target=exchange, name="trustdial-client-request", daemon=True)
        worker.start()
        worker.join(deadline.remaining(f"{method} {path}"))
        if worker.is_alive():
            cancelled.set()
            raise ClientError(
                "DEADLINE_EXCEEDED",
                f"{method} {path}: no complete answer within the call's budget of {deadline.budget:g} s",
            )
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        status, data = result
        return parse_response(method, path, status, data)

    def _exchange(
        self, method: str, path: str, deadline: Deadline, cancelled: threading.Event, kwargs: dict[str, Any]
    ) -> tuple[int, bytes]:
        import httpx

        try:
            timeout = httpx.Timeout(deadline.remaining(f"{method} {path}"))
            with self._http.stream(method, path, timeout=timeout, **kwargs) as response:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    if cancelled.is_set():
                        raise ClientError("DEADLINE_EXCEEDED", f"{method} {path}: abandoned after the budget ran out")
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise ClientError(
                            "RESPONSE_TOO_LARGE", f"{method} {path}: expected at most {MAX_RESPONSE_BYTES} bytes"
                        )
                    chunks.append(chunk)
                return response.status_code, b"".join(chunks)
        except httpx.HTTPError as err:
            raise ClientError(
                "SERVICE_UNREACHABLE", f"{method} {path} failed: {type(err).__name__}: {describe_value(str(err), 200)}"
            ) from None
        except OSError as err:
            raise ClientError("SERVICE_UNREACHABLE", f"{method} {path} failed: {type(err).__name__}") from None

    def attest(self, deadline: Deadline | None = None) -> AttestedKey:
        """Challenge the enclave with a fresh nonce and verify both documents; cache the key."""
        deadline = deadline or Deadline.after(self.timeout)
        nonce = os.urandom(NONCE_BYTES)
        body = self._request("GET", "/v1/attestation", deadline, params={"nonce": nonce.hex()})
        document = _b64(body.get("document"), "document")
        binding = _b64(body.get("binding"), "binding")
        pcrs = PcrsEqual(dict(self.expected.pcrs))
        fresh = verify_attestation(
            document, AllOf([pcrs, NonceEquals(nonce)]), root=self.expected.root, allow_debug=self.expected.allow_debug
        )
        bound = verify_binding_document(binding, pcrs, root=self.expected.root, allow_debug=self.expected.allow_debug)
        if fresh.public_key != bound.public_key or fresh.user_data != BINDING_USER_DATA:
            raise ReceiptError(
                "RECEIPT_KEY", "the fresh attestation document and the binding document attest different receipt keys"
            )
        if bound.public_key is None:  # verify_binding_document refuses this; explicit so python -O cannot drop it
            raise ReceiptError(
                "RECEIPT_KEY", "expected the binding attestation document to carry a public key, found none"
            )
        deadline.remaining("accepting the verified attestation")
        key = AttestedKey(bound.public_key, bound.sha256, binding, bound.timestamp_ms, time.monotonic())
        with self._lock:
            self._key = key
        return key

    def attested_key(self, deadline: Deadline | None = None) -> AttestedKey:
        with self._lock:
            key = self._key
        if key is None or time.monotonic() - key.verified_at > self.attestation_ttl:
            key = self.attest(deadline)
        return key

    def _expected_model(self, model: str) -> bytes:
        sha = self.expected.models.get(model)
        if sha is None:
            raise InputError(
                "UNKNOWN_MODEL", f"no expected sha256 for model {model!r}; known {sorted(self.expected.models)}"
            )
        return sha

    def _verify(
        self, body: dict[str, Any], key: AttestedKey, floor: int, expectation: ReceiptExpectation, deadline: Deadline
    ) -> tuple[bytes, Statement]:
        receipt = _b64(body.get("receipt"), "receipt")
        try:
            opened = open_receipt(receipt, public_key=key.public_key, attestation_digest=key.attestation_digest)
        except ReceiptError as err:
            if err.code not in ("RECEIPT_SIGNATURE", "RECEIPT_ATTESTATION_MISMATCH"):
                raise
            # The enclave may have restarted with a new key: re-attest once; same key means a bad receipt.
            renewed = self.attest(deadline)
            if renewed.public_key == key.public_key:
                raise
            key = renewed
            floor = self._floor(key)
            opened = open_receipt(receipt, public_key=key.public_key, attestation_digest=key.attestation_digest)
        check_statement(
            opened.statement,
            dataclasses.replace(expectation, min_seq=floor, not_before_ms=key.binding_timestamp_ms),
        )
        deadline.remaining("accepting the verified receipt")
        with self._lock:
            seen = self._highest_seq.get(key.attestation_digest, 0)
            self._highest_seq[key.attestation_digest] = max(seen, opened.statement.seq)
        return receipt, opened.statement

    def _floor(self, key: AttestedKey) -> int:
        with self._lock:
            return self._highest_seq.get(key.attestation_digest, 0) + 1

    def infer(self, model: str, inputs: Mapping[str, Tensor]) -> InferenceResult:
        """Run ``model`` on ``inputs``; returns outputs only if their receipt verifies."""
        deadline = Deadline.after(self.timeout)
        sha = self._expected_model(model)
        key = self.attested_key(deadline)
        floor = self._floor(key)
        nonce = os.urandom(NONCE_BYTES)
        body = self._request(
            "POST",
            "/v1/infer",
            deadline,
            json={"model": model, "inputs": tensors_to_json(inputs), "nonce": nonce.hex()},
        )
        outputs = tensors_from_json(body.get("outputs"))
        expectation = ReceiptExpectation(
            models=frozenset({sha}), inputs=dict(inputs), outputs=outputs, nonce=nonce, op="infer"
        )
        receipt, statement = self._verify(body, key, floor, expectation, deadline)
        return InferenceResult(outputs, receipt, statement, key.binding_document)


__all__ = [
    "AttestedKey",
    "Client",
    "ClientError",
    "Deadline",
    "ExpectedEnclave",
    "InferenceResult",
    "VerificationError",
    "parse_response",
    "tensors_from_json",
]
