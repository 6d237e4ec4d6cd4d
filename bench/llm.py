"""LLM serving: tokens/s and time to first token at batch 1, raw engine against attested serving.

Three ways over the same bundle, greedy, a 64-token prompt (text completion) and 128 new tokens:

* ``raw``: a bare onnxruntime-genai ``Generator`` loop (append the prompt, generate token by token);
* ``attested``: the enclave's :class:`enclave_app.llm.service.LlmService` in this process, streaming, with every
  chunk hashed into the chain and sealed by a :class:`ReceiptPipeline` (thread sealer), timed at the frames it
  hands to the server, i.e. after each chunk's receipt exists;
* ``e2e``: ``trustdial serve --llm`` + ``trustdial gateway`` + ``trustdial-verify proxy`` as processes on
  loopback, the ``openai`` client streaming through the proxy (every chunk verified before it is released).

``raw`` and ``attested`` alternate in rounds in one process; medians. tok/s counts completion tokens over the time
from the request to the last token; TTFT is the time to the first token (e2e: the first content chunk). The last
line is one JSON object with ``raw_tok_s``, ``attested_tok_s``, ``ratio`` (attested / raw), ``e2e_tok_s``,
``ttft_ms`` (through the proxy) and the details.

    .venv/bin/python bench/llm.py [--bundle DIR | --tiny] [--rounds 5] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from json_line import emit
from trustdial_verifier.unstable.llm import Engine, verify_bundle

from enclave_app.llm.service import LlmModel, LlmService
from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.pipeline import ReceiptPipeline

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results" / "llm.json"


def _progress(message: str) -> None:
    print(f"bench/llm: {message}", file=sys.stderr, flush=True)


def prompt_of(engine: Engine, tokens: int) -> str:
    """A text whose tokenization is exactly ``tokens`` ids."""
    text = " the quick brown fox jumps over the lazy dog" * (tokens // 4)
    ids = list(engine.tokenizer.encode(text))
    while len(ids) > tokens:
        text = text[: len(text) - 1]
        ids = list(engine.tokenizer.encode(text))
    if len(ids) != tokens:
        raise SystemExit(f"could not make a prompt of exactly {tokens} tokens ({len(ids)})")
    return text


def raw_run(engine: Engine, prompt_ids: list[int], new_tokens: int) -> tuple[float, float, int]:
    og = engine._og
    start = time.perf_counter()
    params = og.GeneratorParams(engine.model)
    params.set_search_options(max_length=len(prompt_ids) + new_tokens, do_sample=False, batch_size=1)
    generator = og.Generator(engine.model, params)
    generator.append_tokens(prompt_ids)
    first = 0.0
    count = 0
    while not generator.is_done():
        generator.generate_next_token()
        generator.get_next_tokens()
        count += 1
        if count == 1:
            first = time.perf_counter()
    return time.perf_counter() - start, first - start, count


def attested_run(service: LlmService, body: dict[str, Any]) -> tuple[float, float, int]:
    times: list[float] = []

    async def send(frame: dict[str, Any]) -> None:
        if frame.get("event") == "chunk" and frame.get("index", 0) > 0:
            times.append(time.perf_counter())

    async def go() -> float:
        start = time.perf_counter()
        await service.complete({"endpoint": "completions", "body": body, "nonce": b"bench"}, send)
        return start

    start = asyncio.run(go())
    return times[-1] - start, times[0] - start, len(times)


def e2e_runs(bundle: Path, body: dict[str, Any], rounds: int) -> tuple[list[float], list[float], list[int]]:
    import openai

    sys.path.insert(0, str(ROOT / "tests"))
    from serve_gateway import start_process, start_serve_and_gateway, stop_process

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "pcrs.json").write_text(json.dumps({"0": "b0" * 48, "1": "b1" * 48, "2": "b2" * 48}))
        stack = start_serve_and_gateway([], work / "pcrs.json", work / "root.pem",
                                        serve_args=["--llm", f"m={bundle}", "--threads", "2"])  # fmt: skip
        try:
            digest = verify_bundle(bundle).digest().hex()
            proxy, ready = start_process(
                [BIN / "trustdial-verify", "proxy", "--upstream", stack.url, "--pcrs", work / "pcrs.json",
                 "--root", work / "root.pem", "--model", f"m={digest}"]
            )  # fmt: skip
            try:
                app = openai.OpenAI(base_url=ready["url"] + "/v1", api_key="unused", max_retries=0)
                app.completions.create(**{**body, "model": "m", "max_tokens": 4})  # warm: attestation, sessions
                totals, firsts, counts = [], [], []
                for _ in range(rounds):
                    start = time.perf_counter()
                    first, count = 0.0, 0
                    for chunk in app.completions.create(**{**body, "model": "m"}, stream=True):
                        if chunk.choices and chunk.model_extra and chunk.model_extra["trustdial"].get("index", 0) > 0:
                            count += 1
                            if count == 1:
                                first = time.perf_counter()
                    totals.append(time.perf_counter() - start)
                    firsts.append(first - start)
                    counts.append(count)
                return totals, firsts, counts
            finally:
                stop_process(proxy)
        finally:
            stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--bundle", type=Path, help="bundle directory (default: the cached SmolLM2 int4 bundle)")
    parser.add_argument("--tiny", action="store_true", help="use the test bundle tests/data/llm/tiny")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--record", action="store_true", help=f"also write {RESULTS.relative_to(ROOT)}")
    args = parser.parse_args()
    if args.tiny:
        bundle = ROOT / "tests" / "data" / "llm" / "tiny"
    elif args.bundle is not None:
        bundle = args.bundle
    else:
        from trustdial.llm.smollm2 import ensure_bundle

        bundle = ensure_bundle()
    manifest = verify_bundle(bundle)
    engine = Engine(bundle, threads=2)
    prompt = prompt_of(engine, args.prompt_tokens)
    prompt_ids = list(engine.tokenizer.encode(prompt))
    body = {"model": "m", "prompt": prompt, "max_tokens": args.new_tokens, "temperature": 0, "stream": True}
    pipeline = ReceiptPipeline(ReceiptKey.generate("p256"), bytes(32))
    service = LlmService([LlmModel("m", bundle, manifest.digest(), engine)], pipeline)
    raw_run(engine, prompt_ids, 8)
    attested_run(service, {**body, "max_tokens": 8})  # warm both
    raw: list[tuple[float, float, int]] = []
    attested: list[tuple[float, float, int]] = []
    for i in range(args.rounds):
        _progress(f"round {i + 1}/{args.rounds}: raw and attested")
        raw.append(raw_run(engine, prompt_ids, args.new_tokens))
        attested.append(attested_run(service, body))
    pipeline.close()
    _progress("end to end through gateway and proxy")
    totals, firsts, counts = e2e_runs(bundle, {k: v for k, v in body.items() if k != "stream"}, args.rounds)

    def tok_s(runs: list[tuple[float, float, int]]) -> float:
        return statistics.median(count / total for total, _, count in runs)

    def ttft(runs: list[tuple[float, float, int]]) -> float:
        return statistics.median(first for _, first, _ in runs) * 1000

    raw_tok_s, attested_tok_s = tok_s(raw), tok_s(attested)
    e2e = list(zip(totals, firsts, counts, strict=True))
    result = {
        "raw_tok_s": round(raw_tok_s, 1),
        "attested_tok_s": round(attested_tok_s, 1),
        "ratio": round(attested_tok_s / raw_tok_s, 4),
        "e2e_tok_s": round(tok_s(e2e), 1),
        "ttft_ms": round(ttft(e2e), 2),
        "raw_ttft_ms": round(ttft(raw), 2),
        "attested_ttft_ms": round(ttft(attested), 2),
        "tokens": {
            "prompt": len(prompt_ids),
            "raw": [c for *_, c in raw],
            "attested": [c for *_, c in attested],
            "e2e": counts,
        },
        "bundle": manifest.meta.get("name", str(bundle)),
        "bundle_digest": manifest.digest().hex(),
        "rounds": args.rounds,
        "threads": 2,
    }
    emit(result, RESULTS, args.record)


if __name__ == "__main__":
    main()
