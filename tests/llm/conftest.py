"""Fixtures of the LLM area: the stack of real processes (see stack.py), once per session."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from llm.stack import LlmStack, start_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmStack]:
    running = start_stack(tmp_path_factory.mktemp("llm"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def box(stack: LlmStack) -> Iterator[LlmStack]:
    """The stack with a clean middlebox before and after the test."""
    stack.middlebox.reset()
    try:
        yield stack
    finally:
        stack.middlebox.reset()


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60,
                         _strict_response_validation=True)  # fmt: skip
