"""``trustdial-verify chat`` on saved answers of the live gateway (plain and streamed), with ``--replay``."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_gateway import BIN

from llm.stack import TINY, LlmStack, other_bundle

NONCE = bytes(range(16))


def _save(stack: LlmStack, work: Path, body: dict[str, Any], endpoint: str = "chat/completions") -> Path:
    answer = httpx.post(
        f"{stack.a.url}/v1/{endpoint}", json=body, headers={"x-trustdial-nonce": NONCE.hex()}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    (work / "request.json").write_text(json.dumps(body))
    binding = httpx.get(f"{stack.a.url}/v1/attestation", params={"nonce": "01"}, timeout=30).json()["binding"]
    (work / "binding.cose").write_bytes(base64.b64decode(binding))
    response = work / ("response.sse" if body.get("stream") else "response.json")
    response.write_bytes(answer.content)
    return response


def _verify(stack: LlmStack, work: Path, response: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [
            BIN / "trustdial-verify", "chat", response, "--request", work / "request.json",
            "--attestation", work / "binding.cose", "--pcrs", stack.pcrs_path, "--root", stack.root_a,
            "--bundle-digest", stack.digests["tiny"], "--nonce", NONCE.hex(), "--json", *extra,
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return done.returncode, json.loads(done.stdout)


@pytest.mark.parametrize(
    "body",
    [
        {"model": "tiny", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 9, "temperature": 0},
        {"model": "tiny", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 9, "top_k": 30},
        {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 7, "stream": True,
         "stream_options": {"include_usage": True}, "temperature": 0.8, "seed": 5},
    ],
    ids=["greedy", "sampled-enclave-seed", "stream"],
)  # fmt: skip
def test_saved_answers_verify_and_replay(stack: LlmStack, tmp_path: Path, body: dict[str, Any]) -> None:
    response = _save(stack, tmp_path, body)
    status, report = _verify(stack, tmp_path, response, "--replay", str(TINY))
    assert (status, report["valid"], report["replayed"]) == (0, True, True), report
    assert report["completion_tokens"] == body["max_tokens"] or report["finish_reason"] == "stop"
    assert report["seed_source"] == ("request" if "seed" in body else "enclave")


def test_a_changed_answer_is_rejected_offline(stack: LlmStack, tmp_path: Path) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 5, "temperature": 0}
    response = _save(stack, tmp_path, body)
    answer = json.loads(response.read_text())
    answer["choices"][0]["message"]["content"] += "!"
    response.write_text(json.dumps(answer))
    status, report = _verify(stack, tmp_path, response)
    assert (status, report["code"]) == (1, "RECEIPT_OUTPUT_MISMATCH")


def test_a_changed_request_is_rejected_offline(stack: LlmStack, tmp_path: Path) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 5, "temperature": 0}
    response = _save(stack, tmp_path, body)
    (tmp_path / "request.json").write_text(json.dumps({**body, "temperature": 0.2}))
    status, report = _verify(stack, tmp_path, response)
    assert (status, report["code"]) == (1, "LLM_REQUEST_MISMATCH")


def test_replay_with_another_bundle_is_rejected(stack: LlmStack, tmp_path: Path) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 5, "temperature": 0}
    response = _save(stack, tmp_path, body)
    other = other_bundle(tmp_path / "other")
    status, report = _verify(stack, tmp_path, response, "--replay", str(other))
    assert (status, report["code"]) == (1, "LLM_REPLAY_BUNDLE")


def test_a_cut_stream_is_rejected_offline(stack: LlmStack, tmp_path: Path) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 6, "stream": True}
    response = _save(stack, tmp_path, body)
    events = response.read_text().split("\n\n")
    response.write_text("\n\n".join(events[:4]) + "\n\n")
    status, report = _verify(stack, tmp_path, response)
    assert (status, report["code"]) == (1, "LLM_STREAM_TRUNCATED")
