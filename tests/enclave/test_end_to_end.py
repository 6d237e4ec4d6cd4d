"""Client -> gateway -> enclave server over real sockets (simulated NSM, TCP on loopback):
the client returns verified outputs, and rejects every kind of tampering."""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any

import cbor2
import httpx
import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from trustdial_verifier._internal.attestation.verify import AttestationError
from trustdial_verifier._internal.client import Client, ClientError
from trustdial_verifier._internal.receipts import ReceiptError
from trustdial_verifier._internal.receipts.model import decode_receipt
from trustdial_verifier._internal.tensors import Tensor
from trustdial_verifier.errors import InputError

from enclave.live_service import LiveService, ModelFiles
from enclave.middlebox import http_through
from enclave_app.receipts.key import ReceiptKey

X = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 16)


def _mlp_reference(path: Any, x: np.ndarray) -> np.ndarray:
    """Forward pass of the Gemm/Relu MLP in plain numpy from the ONNX initializers."""
    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    h = x.astype(np.float64)
    layers = len([n for n in weights if n.startswith("W")])
    for i in range(layers):
        h = h @ weights[f"W{i}"] + weights[f"B{i}"]
        if i < layers - 1:
            h = np.maximum(h, 0)
    return h


def test_client_returns_outputs_matching_an_independent_forward_pass(
    live: LiveService, model_files: ModelFiles
) -> None:
    with Client(live.url, live.expected()) as client:
        result = client.infer("mlp", {"x": Tensor.from_array(X)})
    np.testing.assert_allclose(result.outputs["y"].to_array(), _mlp_reference(model_files.mlp, X), rtol=1e-5, atol=1e-5)


def test_cnn_inference_verifies(live: LiveService) -> None:
    with Client(live.url, live.expected()) as client:
        result = client.infer("cnn", {"x": Tensor.from_array(np.ones((1, 1, 28, 28), np.float32))})
    assert result.outputs["y"].shape == (1, 10)
    assert result.statement.model == live.models["cnn"]


def test_receipt_names_the_served_model_and_the_binding_document(live: LiveService) -> None:
    with Client(live.url, live.expected()) as client:
        result = client.infer("mlp", {"x": Tensor.from_array(X)})
    assert result.statement.model == live.models["mlp"]
    assert result.statement.attestation == hashlib.sha256(result.attestation).digest()


def test_sequence_numbers_increase_across_calls(live: LiveService) -> None:
    with Client(live.url, live.expected()) as client:
        seqs = [client.infer("mlp", {"x": Tensor.from_array(X)}).statement.seq for _ in range(3)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3


def _tamper_output(path: str, body: dict[str, Any]) -> dict[str, Any]:
    if path == "/v1/infer":
        y = np.frombuffer(base64.b64decode(body["outputs"]["y"]["data"]), np.float32).copy()
        y[0] += 1.0
        body["outputs"]["y"]["data"] = base64.b64encode(y.tobytes()).decode()
    return body


def test_tampered_output_is_rejected(live: LiveService) -> None:
    with Client(live.url, live.expected(), http=http_through(live.url, _tamper_output)) as client:
        with pytest.raises(ReceiptError) as err:
            client.infer("mlp", {"x": Tensor.from_array(X)})
    assert err.value.code == "RECEIPT_OUTPUT_MISMATCH"


def _resign_with_another_key(path: str, body: dict[str, Any]) -> dict[str, Any]:
    if path == "/v1/infer":
        receipt = decode_receipt(base64.b64decode(body["receipt"]))
        from enclave_app.receipts.sealer import Sealer

        statement = cbor2.loads(receipt.statement)
        sealer = Sealer(ReceiptKey.generate(), statement["attestation"])
        sealer.add(receipt.statement)
        body["receipt"] = base64.b64encode(sealer.seal()[0].encode()).decode()
    return body


def test_receipt_from_another_key_is_rejected(live: LiveService) -> None:
    with Client(live.url, live.expected(), http=http_through(live.url, _resign_with_another_key)) as client:
        with pytest.raises(ReceiptError) as err:
            client.infer("mlp", {"x": Tensor.from_array(X)})
    assert err.value.code == "RECEIPT_SIGNATURE"


class Replayer:
    """Records the first /v1/infer response and serves it again for every later request."""

    def __init__(self) -> None:
        self.recorded: dict[str, Any] | None = None

    def __call__(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path != "/v1/infer":
            return body
        if self.recorded is None:
            self.recorded = copy.deepcopy(body)
            return body
        return copy.deepcopy(self.recorded)


def test_replayed_response_is_rejected_by_its_nonce(live: LiveService) -> None:
    with Client(live.url, live.expected(), http=http_through(live.url, Replayer())) as client:
        client.infer("mlp", {"x": Tensor.from_array(X)})
        with pytest.raises(ReceiptError) as err:
            client.infer("mlp", {"x": Tensor.from_array(X)})
    assert err.value.code == "RECEIPT_NONCE_MISMATCH"


def test_sequence_rollback_is_rejected(live: LiveService) -> None:
    """A receipt whose sequence number is not above every one the client already verified
    (here: an old genuine receipt whose nonce the forger cannot change) is refused as a rollback
    before its nonce is even compared when the nonce happens to match."""
    with Client(live.url, live.expected()) as client:
        old = client.infer("mlp", {"x": Tensor.from_array(X)})
        client.infer("mlp", {"x": Tensor.from_array(X)})
        key = client.attested_key()
        from dataclasses import replace

        from trustdial_verifier._internal.receipts import ReceiptExpectation, check_statement, open_receipt

        opened = open_receipt(old.receipt, public_key=key.public_key, attestation_digest=key.attestation_digest)
        floor = client._floor(key)  # what the client demands of the next response
        expectation = ReceiptExpectation(
            models=frozenset({live.models["mlp"]}),
            inputs={"x": Tensor.from_array(X)},
            outputs=old.outputs,
            nonce=opened.statement.nonce,
        )
        with pytest.raises(ReceiptError) as err:
            check_statement(opened.statement, replace(expectation, min_seq=floor))
    assert err.value.code == "RECEIPT_SEQUENCE_ROLLBACK"


def test_pcr_mismatch_is_rejected_at_attestation(live: LiveService) -> None:
    wrong = {**live.pcrs, 0: b"\x00" * 47 + b"\x01"}
    with Client(live.url, live.expected(pcrs=wrong)) as client:
        with pytest.raises(AttestationError) as err:
            client.infer("mlp", {"x": Tensor.from_array(X)})
    assert err.value.code == "PCR_MISMATCH"


def test_wrong_model_hash_is_rejected(live: LiveService) -> None:
    models = {**live.models, "mlp": hashlib.sha256(b"a different model").digest()}
    with Client(live.url, live.expected(models=models)) as client:
        with pytest.raises(ReceiptError) as err:
            client.infer("mlp", {"x": Tensor.from_array(X)})
    assert err.value.code == "RECEIPT_MODEL_MISMATCH"


def test_client_refuses_to_call_a_model_without_expected_hash(live: LiveService) -> None:
    with Client(live.url, live.expected()) as client:
        with pytest.raises(InputError) as err:
            client.infer("unlisted", {"x": Tensor.from_array(X)})
    assert err.value.code == "UNKNOWN_MODEL"


def test_client_requires_expected_pcrs(live: LiveService) -> None:
    with pytest.raises(InputError) as err:
        live.expected(pcrs={})
    assert err.value.code == "NO_EXPECTED_PCRS"


def test_client_reports_service_errors_with_their_code(live: LiveService) -> None:
    with Client(live.url, live.expected()) as client:
        with pytest.raises(ClientError) as err:
            client.infer("mlp", {"x": Tensor.from_array(np.zeros((1, 3), np.float32))})
    assert err.value.code == "BAD_SHAPE"


def test_attestation_is_cached_until_its_ttl(live: LiveService) -> None:
    calls: list[str] = []

    def count(path: str, body: dict[str, Any]) -> dict[str, Any]:
        calls.append(path)
        return body

    with Client(live.url, live.expected(), http=http_through(live.url, count)) as client:
        for _ in range(3):
            client.infer("mlp", {"x": Tensor.from_array(X)})
    assert calls.count("/v1/attestation") == 1


def test_attestation_is_renewed_after_its_ttl(live: LiveService) -> None:
    calls: list[str] = []

    def count(path: str, body: dict[str, Any]) -> dict[str, Any]:
        calls.append(path)
        return body

    with Client(live.url, live.expected(), attestation_ttl=0.0, http=http_through(live.url, count)) as client:
        for _ in range(2):
            client.infer("mlp", {"x": Tensor.from_array(X)})
    assert calls.count("/v1/attestation") == 2


def test_openapi_document_lists_the_routes(live: LiveService) -> None:
    paths = httpx.get(f"{live.url}/openapi.json", timeout=10).json()["paths"]
    assert {"/v1/models", "/v1/attestation", "/v1/infer", "/v1/chat/completions", "/v1/completions"} <= set(paths)
    assert "requestBody" in paths["/v1/infer"]["post"]


def test_models_route_reports_file_hashes(live: LiveService) -> None:
    models = httpx.get(f"{live.url}/v1/models", timeout=10).json()["models"]
    assert {m["name"]: bytes.fromhex(m["sha256"]) for m in models} == live.models
