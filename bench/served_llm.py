"""Served chat completions/s: ``trustdial serve --llm`` + ``trustdial gateway`` against the server a user
would write instead, in one run, on loopback (issue 16 item 3: what the gateway adds, on the LLM path).

The companion of ``bench/served.py`` (same load generator, process start-up, /proc CPU accounting and
alternation; read its docstring first). Sides:

* ``trustdial``: ``trustdial serve --llm tiny=BUNDLE`` (simulated NSM, every other option at its default)
  and ``trustdial gateway`` in front of it; ``POST /v1/chat/completions`` with a fresh nonce per request
  in ``x-trustdial-nonce``.
* ``plain``: a plain FastAPI + onnxruntime-genai server written below (:func:`plain_app`, about 40 lines)
  on the same bundle: the chat template, greedy decoding, an OpenAI-shaped answer, same uvicorn settings.

Every request is the same short chat (``--max-tokens`` greedy tokens, ``temperature`` 0), so both sides
produce the same tokens; a sample of the answers is compared with each other and every sampled
trustdial answer is verified with ``trustdial_verifier.unstable.llm.verify_completion``
(receipt, request record, prompt and completion ids, text, usage) against the key attested through
``/v1/attestation``.

The model is the repository's tiny test bundle (tests/data/llm/tiny: 2 layers, hidden size 64), so a
completion costs little and what the served path adds per request stays visible; the figures are
completions/s, not tokens/s of a real model (docs/llm.md has those).

The last line is one JSON object: ``trustdial_rps``, ``plain_rps``, ``ratio`` at 16 connections, the same
with ``_1`` at one connection, CPU per request of each side, the spread and every run.

    .venv/bin/python bench/served_llm.py [--quick] [--max-tokens 16] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from json_line import emit
from pydantic import BaseModel
from served import (
    BIN,
    PCRS,
    UVICORN_SETTINGS,
    Requests,
    Side,
    _summary,
    drive,
    progress,
    start,
    stop,
)

RESULTS = Path(__file__).resolve().parent / "results" / "served_llm.json"
BUNDLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "llm" / "tiny"
NAME = "tiny"
MESSAGES = [{"role": "user", "content": "Say something short."}]


# --- the baseline: what a user would write instead --------------------------------------------------------------


class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str
    messages: list[Message]
    max_tokens: int = 16
    temperature: float = 1.0


def plain_app(bundle: str) -> Any:
    """FastAPI + onnxruntime-genai: chat template, greedy decoding, an OpenAI-shaped answer."""
    import onnxruntime_genai as og
    from fastapi import FastAPI, HTTPException

    model = og.Model(og.Config(bundle))
    tokenizer = og.Tokenizer(model)
    eos = json.loads((Path(bundle) / "genai_config.json").read_text())["model"]["eos_token_id"]
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    app = FastAPI()

    @app.post("/v1/chat/completions")
    def chat(body: ChatRequest) -> dict[str, Any]:
        if body.model != NAME:
            raise HTTPException(404, f"no model named {body.model!r}")
        messages = json.dumps([m.model_dump() for m in body.messages])
        prompt = list(tokenizer.encode(tokenizer.apply_chat_template(messages, add_generation_prompt=True)))
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=len(prompt) + body.max_tokens, batch_size=1, do_sample=False)
        generator = og.Generator(model, params)
        generator.append_tokens(prompt)
        tokens: list[int] = []
        finish = "length"
        while len(tokens) < body.max_tokens:
            generator.generate_next_token()
            token = int(generator.get_next_tokens()[0])
            if token in eos_ids:
                finish = "stop"
                break
            tokens.append(token)
        return {
            "object": "chat.completion",
            "model": body.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": tokenizer.decode(tokens)},
                 "finish_reason": finish}
            ],
            "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(tokens)},
        }  # fmt: skip

    return app


def run_plain(bundle: str) -> None:
    import uvicorn

    from enclave_app.addresses import tcp_listener

    sock = tcp_listener("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(plain_app(bundle), **UVICORN_SETTINGS))
    host, port = sock.getsockname()[:2]
    print(json.dumps({"event": "listening", "url": f"http://{host}:{port}"}), flush=True)
    asyncio.run(server.serve(sockets=[sock]))


# --- sides ------------------------------------------------------------------------------------------------------


def start_trustdial(workdir: Path, bundle: Path) -> Side:
    pcrs = workdir / "pcrs.json"
    pcrs.write_text(json.dumps({str(k): v.hex() for k, v in PCRS.items()}))
    root = workdir / "root.pem"
    command = [
        str(BIN / "trustdial"), "serve", "--llm", f"{NAME}={bundle}", "--listen", "tcp:127.0.0.1:0",
        "--nsm", "simulated", "--simulated-pcrs-from", str(pcrs), "--simulated-root-out", str(root),
    ]  # fmt: skip
    server, ready = start(command)
    try:
        gateway, gateway_ready = start(
            [str(BIN / "trustdial"), "gateway", "--enclave", ready["address"], "--listen", "127.0.0.1:0"]
        )
    except BaseException:
        stop(server)
        raise
    return Side(
        "trustdial", gateway_ready["url"], {"serve": server, "gateway": gateway}, {"ready": ready, "root": root}
    )


def start_plain(bundle: Path) -> Side:
    server, ready = start([sys.executable, __file__, "--role", "plain", "--bundle", str(bundle)])
    return Side("plain", ready["url"], {"plain": server})


def chat_requests(host: str, max_tokens: int, count: int = 256) -> Requests:
    """Pre-built ``POST /v1/chat/completions`` requests, one nonce each (the header trustdial reads)."""
    body = json.dumps(
        {"model": NAME, "messages": MESSAGES, "max_tokens": max_tokens, "temperature": 0}, separators=(",", ":")
    ).encode()
    raw, nonces = [], []
    for _ in range(count):
        nonce = os.urandom(32)
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"x-trustdial-nonce: {nonce.hex()}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        raw.append(head + body)
        nonces.append(nonce)
    import numpy as np

    return Requests(raw, nonces, np.zeros(0, np.float32), "llm")


def check_samples(side: Side, samples: list[tuple[int, bytes]], requests: Requests, max_tokens: int) -> tuple[str, int]:
    """The answer text of every sample (all equal); on the trustdial side every sampled completion verified."""
    texts = {json.loads(raw)["choices"][0]["message"]["content"] for _, raw in samples}
    if len(texts) != 1:
        raise AssertionError(f"{side.name}: the same greedy request gave {len(texts)} different answers")
    if side.name != "trustdial":
        return texts.pop(), 0
    from cryptography import x509
    from trustdial_verifier.unstable.client import Client, ExpectedEnclave
    from trustdial_verifier.unstable.llm import ChatExpectation, Endpoint, verify_completion

    bundle = bytes.fromhex(side.extra["ready"]["llm"][NAME])
    root = x509.load_pem_x509_certificate(side.extra["root"].read_bytes())
    expected = ExpectedEnclave(pcrs=PCRS, models={NAME: bundle}, root=root)  # as the verifying proxy builds it
    with Client(side.url, expected) as client:
        key = client.attested_key()
    request = {"model": NAME, "messages": MESSAGES, "max_tokens": max_tokens, "temperature": 0}
    for index, raw in samples:
        verified = verify_completion(
            json.loads(raw),
            ChatExpectation(
                public_key=key.public_key, attestation_digest=key.attestation_digest, bundles=frozenset({bundle}),
                endpoint=Endpoint.CHAT, request=request, nonce=requests.nonces[index],
            ),
        )  # fmt: skip
        if verified.bundle_digest != bundle:
            raise AssertionError("a completion names another bundle")
    return texts.pop(), len(samples)


# --- the run ----------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=("bench", "plain"), default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--bundle", type=Path, default=BUNDLE, help="the LLM bundle (default: the tiny test bundle)")
    parser.add_argument("--max-tokens", type=int, default=16, help="greedy tokens per completion")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before each measured window")
    parser.add_argument("--rounds", type=int, default=3, help="alternations per connection count")
    parser.add_argument("--connections", default="16,1", help="comma-separated connection counts")
    parser.add_argument("--quick", action="store_true", help="2 s runs, one round (a smoke run)")
    parser.add_argument("--record", action="store_true", help=f"also write the JSON line to {RESULTS.name}")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.role == "plain":
        run_plain(str(args.bundle))
        return
    if args.quick:
        args.seconds, args.warmup, args.rounds = 2.0, 0.5, 1
    counts = [int(c) for c in args.connections.split(",")]
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    runs: list[dict[str, Any]] = []
    verified = 0
    answers: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        progress(f"starting the sides (load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores)")
        sides = [start_trustdial(Path(tmp), args.bundle.resolve()), start_plain(args.bundle.resolve())]
        try:
            requests = chat_requests("127.0.0.1", args.max_tokens)
            for connections in counts:
                for round_index in range(args.rounds):
                    order = sides if round_index % 2 == 0 else list(reversed(sides))
                    for side in order:
                        result = asyncio.run(
                            drive(side.url, requests, connections, args.warmup, args.seconds, side.pids())
                        )
                        samples = result.pop("samples")
                        if result["errors"]:
                            raise AssertionError(f"{side.name}: {result['errors']} requests failed")
                        text, count = check_samples(side, samples, requests, args.max_tokens)
                        answers.setdefault(side.name, text)
                        verified += count
                        runs.append({"side": side.name, "connections": connections, "round": round_index, **result})
                        progress(
                            f"{side.name:>9} c={connections:<2} round {round_index}: {result['rps']:8.1f} req/s "
                            f"p50 {result['p50_ms']} ms p99 {result['p99_ms']} ms, "
                            f"{result['cpu_us_per_request']} µs CPU/req, load {result['load_avg_1m']}"
                        )
        finally:
            for side in sides:
                side.stop()
    if len(set(answers.values())) != 1:
        raise AssertionError(f"the sides answered differently: {answers}")
    out: dict[str, Any] = {}
    for connections in counts:
        suffix = "" if connections == 16 else f"_{connections}"
        by_side = {s.name: [r for r in runs if r["side"] == s.name and r["connections"] == connections] for s in sides}
        rps = {name: statistics.median(r["rps"] for r in rs) for name, rs in by_side.items()}
        out[f"trustdial_rps{suffix}"] = round(rps["trustdial"], 1)
        out[f"plain_rps{suffix}"] = round(rps["plain"], 1)
        out[f"ratio{suffix}"] = round(rps["trustdial"] / rps["plain"], 3)
        out[f"ratio_per_round{suffix}"] = [
            round(t["rps"] / p["rps"], 3) for t, p in zip(by_side["trustdial"], by_side["plain"], strict=True)
        ]
        out[f"cpu_us_per_request{suffix}"] = {
            name: round(statistics.median(r["cpu_us_per_request"] for r in rs), 1) for name, rs in by_side.items()
        }
        out[f"spread{suffix}"] = {
            name: {k: _summary([r[k] for r in rs]) for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")}
            for name, rs in by_side.items()
        }
    out.update(
        mode="llm",
        max_tokens=args.max_tokens,
        answer=answers.get("plain"),
        completions_verified=verified,
        seconds=args.seconds,
        rounds=args.rounds,
        started_utc=started,
        cores=os.cpu_count(),
        load_avg_1m_end=round(os.getloadavg()[0], 2),
        runs=runs,
    )
    emit(out, args.results, args.record)


if __name__ == "__main__":
    main()
