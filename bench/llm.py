"""LLM serving: tokens/s and time to first token at batch 1, raw engine against attested serving.

Three ways over the same bundle, greedy, a 64-token prompt (text completion) and 128 new tokens:

* ``raw``: a bare onnxruntime-genai ``Generator`` loop (append the prompt, generate token by token);
* ``attested``: the enclave's service as ``trustdial serve --llm`` builds it, in this process: an
  :class:`EnclaveService` with serve's default sealer (``--sealer``) on serve's idle-signalling event loop, its
  :class:`LlmService` streaming, every chunk hashed into the chain and sealed, timed at the frames it hands to the
  server, i.e. after each chunk's receipt exists;
* ``e2e``: ``trustdial serve --llm`` + ``trustdial gateway`` + ``trustdial-verify proxy`` as processes on
  loopback, the ``openai`` client streaming through the proxy (every chunk verified before it is released).

Raw and attested share one engine (``--llm-threads``, serve's default). Each round runs raw, attested and e2e one
after the other, so a busy machine slows all three alike; rounds continue until ``--rounds`` or the time budget
(``--budget``, at least ``--min-rounds``). On a shared machine wall times swing with the other load, so each raw
and attested run also counts its CPU time per token (attested: with the sealer process's), and
``cpu_us_per_token.ratio`` is the median of raw / attested: what attestation costs in work, whatever the load;
``voluntary_switches_per_token`` counts how often this process's threads waited (for the GIL, for each other).
tok/s counts completion tokens over the time from the request to the last token; TTFT is the time to the first
token (e2e: the first content chunk). Figures are medians over the rounds, with min and max (``spread``), and
``ratio`` is the median of the per-round ratios attested / raw (each pair run back to back). The load average is
recorded before and after. The last line is one JSON object with ``raw_tok_s``, ``attested_tok_s``, ``ratio``,
``e2e_tok_s``, ``ttft_ms`` (through the proxy) and the details.

    .venv/bin/python bench/llm.py [--bundle DIR | --tiny] [--rounds 7] [--budget 300] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from json_line import emit
from trustdial_verifier.unstable.llm import Engine, verify_bundle

from enclave_app.llm.service import LlmModel, LlmService, load_llm
from enclave_app.loop_idle import idle_signalling_loop
from enclave_app.models import ModelRegistry
from enclave_app.nsm.selection import open_nsm
from enclave_app.receipts.process_pipeline import ProcessReceiptPipeline
from enclave_app.serve_command import DEFAULT_LLM_THREADS
from enclave_app.service import SEALERS, EnclaveService, default_sealer

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


def attested_run(
    loop: asyncio.AbstractEventLoop, service: LlmService, body: dict[str, Any]
) -> tuple[float, float, int]:
    times: list[float] = []

    async def send(frame: dict[str, Any]) -> None:
        if frame.get("event") == "chunk" and frame.get("index", 0) > 0:
            times.append(time.perf_counter())

    async def go() -> float:
        start = time.perf_counter()
        await service.complete({"endpoint": "completions", "body": body, "nonce": b"bench"}, send)
        return start

    start = loop.run_until_complete(go())
    return times[-1] - start, times[0] - start, len(times)


class Served:
    """The enclave service as ``trustdial serve`` wires it (serve_command._serve), on its event loop."""

    def __init__(self, model: LlmModel, sealer: str) -> None:
        self.loop, selector = idle_signalling_loop()

        async def build() -> EnclaveService:
            service = EnclaveService(ModelRegistry([]), open_nsm("simulated"), sealer=sealer, loop=self.loop)
            if isinstance(service.receipts, ProcessReceiptPipeline):
                selector.on_block = service.receipts.writer_idle
            elif sealer == "loop":
                selector.on_block = service.loop_idle
            service.llm = LlmService([model], service.receipts, after_submit=service.seal_later)
            return service

        self.service = self.loop.run_until_complete(build())
        self.selector = selector

    def run(self, body: dict[str, Any]) -> tuple[float, float, int]:
        assert self.service.llm is not None
        return attested_run(self.loop, self.service.llm, body)

    def sealer_cpu(self) -> float:
        """CPU seconds of the sealer process so far (0 for the thread and loop sealers: they are this process)."""
        receipts = self.service.receipts
        return receipts.child_cpu_seconds() if isinstance(receipts, ProcessReceiptPipeline) else 0.0

    def close(self) -> None:
        self.selector.on_block = None
        self.service.close()
        self.loop.close()


class EndToEnd:
    """serve + gateway + proxy processes; :meth:`run` streams one completion through them with ``openai``."""

    def __init__(self, bundle: Path, work: Path, body: dict[str, Any], llm_threads: int, sealer: str) -> None:
        import openai

        sys.path.insert(0, str(ROOT / "tests"))
        from serve_gateway import start_process, start_serve_and_gateway, stop_process

        self._stop_process = stop_process
        (work / "pcrs.json").write_text(json.dumps({"0": "b0" * 48, "1": "b1" * 48, "2": "b2" * 48}))
        serve_args = ["--llm", f"m={bundle}", "--llm-threads", str(llm_threads), "--sealer", sealer]
        self.stack = start_serve_and_gateway([], work / "pcrs.json", work / "root.pem", serve_args=serve_args)
        try:
            digest = verify_bundle(bundle).digest().hex()
            self.proxy, ready = start_process(
                [BIN / "trustdial-verify", "proxy", "--upstream", self.stack.url, "--pcrs", work / "pcrs.json",
                 "--root", work / "root.pem", "--model", f"m={digest}"]
            )  # fmt: skip
        except BaseException:
            self.stack.stop()
            raise
        self.body = {k: v for k, v in body.items() if k != "stream"}
        self.app = openai.OpenAI(base_url=ready["url"] + "/v1", api_key="unused", max_retries=0)
        self.app.completions.create(**{**self.body, "max_tokens": 4})  # warm: attestation, sessions

    def run(self) -> tuple[float, float, int]:
        start = time.perf_counter()
        first, count = 0.0, 0
        for chunk in self.app.completions.create(**self.body, stream=True):
            if chunk.choices and chunk.model_extra and chunk.model_extra["trustdial"].get("index", 0) > 0:
                count += 1
                if count == 1:
                    first = time.perf_counter()
        return time.perf_counter() - start, first - start, count

    def close(self) -> None:
        self._stop_process(self.proxy)
        self.stack.stop()


Run = tuple[float, float, int]  # seconds to the last token, seconds to the first, tokens


def _summary(values: list[float], digits: int) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def _tok_s(run: Run) -> float:
    return run[2] / run[0]


def _cpu_per_token(
    runs: list[Run], run: Callable[[], Run], switches: list[float], other: Callable[[], float] = lambda: 0.0
) -> float:
    """Append one run to ``runs`` and its voluntary context switches per token (this process's threads waiting:
    for the GIL, for each other) to ``switches``; return its CPU seconds per token (with ``other``'s)."""
    cpu, before, waits = time.process_time(), other(), resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
    runs.append(run())
    switches.append((resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - waits) / runs[-1][2])
    return (time.process_time() - cpu + other() - before) / runs[-1][2]


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--bundle", type=Path, help="bundle directory (default: the cached SmolLM2 int4 bundle)")
    parser.add_argument("--tiny", action="store_true", help="use the test bundle tests/data/llm/tiny")
    parser.add_argument("--rounds", type=int, default=7, help="at most this many rounds (raw, attested, e2e)")
    parser.add_argument("--min-rounds", type=int, default=3, help="at least this many, whatever the budget")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds of rounds, then stop (after min)")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--llm-threads", type=int, default=DEFAULT_LLM_THREADS, help="as trustdial serve's")
    parser.add_argument("--sealer", choices=SEALERS, default=default_sealer(), help="as trustdial serve's")
    parser.add_argument("--no-e2e", action="store_true", help="raw and attested only (same process)")
    parser.add_argument("--record", action="store_true", help=f"also write {RESULTS.relative_to(ROOT)}")
    args = parser.parse_args()
    if args.tiny:
        bundle = ROOT / "tests" / "data" / "llm" / "tiny"
    elif args.bundle is not None:
        bundle = args.bundle
    else:
        from trustdial.llm.smollm2 import ensure_bundle

        bundle = ensure_bundle()
    load_before = _load()
    manifest = verify_bundle(bundle)
    model = load_llm(f"m={bundle}", threads=args.llm_threads)
    engine = model.engine
    prompt = prompt_of(engine, args.prompt_tokens)
    prompt_ids = list(engine.tokenizer.encode(prompt))
    body = {"model": "m", "prompt": prompt, "max_tokens": args.new_tokens, "temperature": 0, "stream": True}
    served = Served(model, args.sealer)
    with tempfile.TemporaryDirectory() as tmp:
        e2e_stack = None
        try:
            if not args.no_e2e:
                _progress("starting serve, gateway and proxy")
                e2e_stack = EndToEnd(bundle, Path(tmp), body, args.llm_threads, args.sealer)
            raw_run(engine, prompt_ids, 8)
            served.run({**body, "max_tokens": 8})  # warm both
            raw: list[Run] = []
            attested: list[Run] = []
            e2e: list[Run] = []
            raw_cpu: list[float] = []  # CPU seconds per token (attested: with the sealer process's)
            attested_cpu: list[float] = []
            raw_waits: list[float] = []  # voluntary context switches per token
            attested_waits: list[float] = []

            def raw_once() -> Run:
                return raw_run(engine, prompt_ids, args.new_tokens)

            def attested_once() -> Run:
                return served.run(body)

            started = time.monotonic()
            while len(raw) < args.rounds and (len(raw) < args.min_rounds or time.monotonic() - started < args.budget):
                if len(raw) % 2 == 0:  # alternate which goes first: neither pays for the other's aftermath
                    raw_cpu.append(_cpu_per_token(raw, raw_once, raw_waits))
                    attested_cpu.append(_cpu_per_token(attested, attested_once, attested_waits, served.sealer_cpu))
                else:
                    attested_cpu.append(_cpu_per_token(attested, attested_once, attested_waits, served.sealer_cpu))
                    raw_cpu.append(_cpu_per_token(raw, raw_once, raw_waits))
                if e2e_stack is not None:
                    e2e.append(e2e_stack.run())
                line = f"round {len(raw)}: raw {_tok_s(raw[-1]):.1f} tok/s, attested {_tok_s(attested[-1]):.1f}"
                if e2e:
                    line += f", e2e {_tok_s(e2e[-1]):.1f}"
                _progress(f"{line} (load {os.getloadavg()[0]:.2f})")
        finally:
            served.close()
            if e2e_stack is not None:
                e2e_stack.close()
    ratios = [_tok_s(a) / _tok_s(r) for r, a in zip(raw, attested, strict=True)]
    raw_ttft = statistics.median(r[1] for r in raw) * 1000

    def figures(runs: list[Run]) -> dict[str, Any]:
        return {
            "tok_s": _summary([_tok_s(r) for r in runs], 1),
            "ttft_ms": _summary([r[1] * 1000 for r in runs], 2),
            "tokens": sorted({r[2] for r in runs}),
        }

    result: dict[str, Any] = {
        "raw_tok_s": round(statistics.median(_tok_s(r) for r in raw), 1),
        "attested_tok_s": round(statistics.median(_tok_s(r) for r in attested), 1),
        "ratio": round(statistics.median(ratios), 4),
        "e2e_tok_s": round(statistics.median(_tok_s(r) for r in e2e), 1) if e2e else None,
        "ttft_ms": round(statistics.median(r[1] for r in e2e) * 1000, 2) if e2e else None,
        "raw_ttft_ms": round(raw_ttft, 2),
        "attested_ttft_ms": round(statistics.median(r[1] for r in attested) * 1000, 2),
        "ttft_over_raw_ms": round(statistics.median(r[1] for r in e2e) * 1000 - raw_ttft, 2) if e2e else None,
        "cpu_us_per_token": {
            "raw": _summary([c * 1e6 for c in raw_cpu], 1),
            "attested": _summary([c * 1e6 for c in attested_cpu], 1),
            "ratio": round(statistics.median(r / a for r, a in zip(raw_cpu, attested_cpu, strict=True)), 4),
        },
        "voluntary_switches_per_token": {
            "raw": round(statistics.median(raw_waits), 3),
            "attested": round(statistics.median(attested_waits), 3),
        },
        "spread": {
            "ratio": _summary(ratios, 4),
            "raw": figures(raw),
            "attested": figures(attested),
            **({"e2e": figures(e2e)} if e2e else {}),
        },
        "prompt_tokens": len(prompt_ids),
        "bundle": manifest.meta.get("name", str(bundle)),
        "bundle_digest": manifest.digest().hex(),
        "rounds": len(raw),
        "llm_threads": args.llm_threads,
        "sealer": args.sealer,
        "load_before": load_before,
        "load_after": _load(),
        "cpus": os.cpu_count(),
    }
    emit(result, RESULTS, args.record)


if __name__ == "__main__":
    main()
