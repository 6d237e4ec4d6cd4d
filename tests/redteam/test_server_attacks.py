"""Attacks on ``trustdial serve`` + ``trustdial gateway`` (live subprocesses on loopback): hostile
requests get a typed JSON error and the service keeps serving."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest
from enclave.live_service import LiveService, start_service, stop_service, write_models

pytestmark = pytest.mark.slow
X = {"dtype": "float32", "shape": [1, 16], "data": base64.b64encode(bytes(64)).decode()}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    service = start_service(write_models(tmp_path_factory.mktemp("models")), tmp_path_factory.mktemp("live"))
    try:
        yield service
    finally:
        stop_service(service)


def _post(live: LiveService, path: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{live.url}{path}", content=body, headers={"content-type": "application/json"}, timeout=30)


def _error_code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, str(response.json()["error"]["code"])


def _still_serving(live: LiveService) -> None:
    response = _post(live, "/v1/infer", json.dumps({"model": "mlp", "inputs": {"x": X}}).encode())
    assert response.status_code == 200


def test_json_nested_beyond_the_parsers_recursion_limit_is_a_typed_400(live: LiveService) -> None:
    response = _post(live, "/v1/infer", b"[" * 50_000 + b"]" * 50_000)
    assert _error_code(response) == (400, "MALFORMED_JSON")
    _still_serving(live)


def test_input_dimension_beyond_u64_is_a_typed_400(live: LiveService) -> None:
    tensor = {"dtype": "float32", "shape": [0, 2**70], "data": ""}
    response = _post(live, "/v1/infer", json.dumps({"model": "mlp", "inputs": {"x": tensor}}).encode())
    assert _error_code(response) == (400, "BAD_SHAPE")
    _still_serving(live)


def test_model_name_with_a_path_traversal_is_unknown(live: LiveService) -> None:
    body = {"model": "../mlp", "inputs": {"x": X}}
    assert _error_code(_post(live, "/v1/infer", json.dumps(body).encode())) == (404, "UNKNOWN_MODEL")


def test_attestation_nonce_longer_than_64_bytes_is_a_typed_400(live: LiveService) -> None:
    response = httpx.get(f"{live.url}/v1/attestation", params={"nonce": "00" * 65}, timeout=30)
    assert _error_code(response) == (400, "BAD_NONCE")
