"""The completion routes against their OpenAPI document with a language model behind them: schemathesis-generated
requests, valid and invalid by the document, get only documented statuses and bodies matching it."""

from __future__ import annotations

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

from llm.stack import LlmStack

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]  # fmt: skip


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_completion_requests_get_documented_answers(stack: LlmStack, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.a.url}/openapi.json")
    operations = [
        r.ok() for r in schema.get_all_operations() if r.ok().path in ("/v1/chat/completions", "/v1/completions")
    ]
    assert len(operations) == 2
    for operation in operations:

        @given(operation.as_strategy(generation_mode=mode))
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def answers_are_documented(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        answers_are_documented()
