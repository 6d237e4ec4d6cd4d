"""The gateway against its own OpenAPI document, over real sockets (gateway and enclave server as
processes on loopback): every reference in the document resolves, a method a route does not serve
gets 405 with ``Allow``, and schemathesis-generated requests, valid and invalid by the document,
get only documented statuses and bodies that match it — never a server error."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from enclave.live_service import LiveService

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _document(live: LiveService) -> dict[str, Any]:
    with urllib.request.urlopen(f"{live.url}/openapi.json", timeout=10) as response:
        document: dict[str, Any] = json.load(response)
    return document


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [ref for item in value.values() for ref in _refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _refs(item)]
    return []


def test_every_reference_in_the_document_resolves(live: LiveService) -> None:
    document = _document(live)
    refs = _refs(document)
    assert "#/components/schemas/TensorJson" in refs  # the infer body's tensors, not a dangling #/$defs/...
    for ref in refs:
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
            node = node[part]


def test_every_error_status_the_gateway_uses_is_documented_for_infer(live: LiveService) -> None:
    responses = _document(live)["paths"]["/v1/infer"]["post"]["responses"]
    # bad input, unknown model, stalled body, oversized body, refused by onnxruntime, enclave errors
    assert {"400", "404", "408", "413", "422", "500", "502", "503", "504"} <= set(responses)


def test_a_method_a_route_does_not_serve_gets_405_with_allow(live: LiveService) -> None:
    request = urllib.request.Request(f"{live.url}/v1/infer", method="PUT", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 405
    assert caught.value.headers["Allow"] == "POST"
    assert json.loads(caught.value.read())["error"]["code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_documented_answers(live: LiveService, mode: GenerationMode) -> None:
    """schemathesis's own pytest plugin does not load under this pytest; its strategies run under
    hypothesis directly, 25 requests per operation and mode."""
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {
        "/v1/models", "/v1/attestation", "/v1/infer", "/v1/chat/completions", "/v1/completions"
    }
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.path == "/v1/models":
            continue  # no parameters: nothing to make invalid

        @given(operation.as_strategy(generation_mode=mode))
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def answers_are_documented(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        answers_are_documented()
