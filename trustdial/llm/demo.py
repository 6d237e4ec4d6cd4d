"""``make llm-demo``: SmolLM2 in a (simulated) enclave, asked through the verifying proxy with the openai client.

Builds the bundle once (cached, trustdial.llm.smollm2), starts ``trustdial serve --llm`` (simulated NSM), the
gateway and ``trustdial-verify proxy`` on 127.0.0.1, asks "What is the capital of France?", prints the answer and
a summary of its receipt, then sends a stream through a middlebox that changes one token: the proxy refuses it
before that token reaches the app, and the demo prints the error the openai client raised.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cbor2
import httpx
from trustdial_verifier.unstable.llm import verify_bundle

from trustdial.llm.smollm2 import ensure_bundle

BIN = Path(sys.executable).parent
QUESTION = "What is the capital of France?"
PCRS = {"0": "d0" * 48, "1": "d1" * 48, "2": "d2" * 48}


def _start(args: Sequence[str | Path]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=30)
        raise RuntimeError(f"{args[0]} {args[1]} did not start")
    return process, json.loads(line)


def _tampering_middlebox(upstream: str) -> ThreadingHTTPServer:
    """Forwards to the gateway; in a stream, replaces the text of the third token chunk."""
    http = httpx.Client(timeout=120)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            answer = http.get(upstream + self.path)
            self._answer(answer.status_code, "application/json", answer.content)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k: v for k, v in self.headers.items() if k.lower().startswith("x-trustdial")}
            answer = http.post(
                upstream + self.path, content=raw, headers={**headers, "content-type": "application/json"}
            )
            kind = answer.headers.get("content-type", "application/json")
            body = answer.content
            if kind.startswith("text/event-stream"):
                events = []
                for block in body.decode().split("\n\n"):
                    if block.startswith("data:") and '"index":3,' in block:
                        event = json.loads(block[5:])
                        event["choices"][0]["delta"]["content"] = " Berlin"
                        block = "data: " + json.dumps(event)
                    events.append(block)
                body = "\n\n".join(events).encode()
            self._answer(answer.status_code, kind, body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> int:
    import openai

    bundle = ensure_bundle()
    digest = verify_bundle(bundle).digest().hex()
    processes: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="trustdial-llm-demo-") as tmp:
        work = Path(tmp)
        (work / "pcrs.json").write_text(json.dumps(PCRS))
        root = work / "root.pem"
        try:
            print(f"bundle {bundle}: digest {digest}", file=sys.stderr)
            serve, ready = _start([BIN / "trustdial", "serve", "--llm", f"smollm2={bundle}", "--listen",
                                   "tcp:127.0.0.1:0", "--nsm", "simulated", "--simulated-pcrs-from",
                                   work / "pcrs.json", "--simulated-root-out", root])  # fmt: skip
            processes.append(serve)
            gateway, gateway_ready = _start([BIN / "trustdial", "gateway", "--enclave", ready["address"],
                                             "--listen", "127.0.0.1:0"])  # fmt: skip
            processes.append(gateway)
            box = _tampering_middlebox(gateway_ready["url"])
            urls = {}
            for label, upstream in (
                ("direct", gateway_ready["url"]),
                ("tampered", f"http://127.0.0.1:{box.server_address[1]}"),
            ):
                proxy, proxy_ready = _start(
                    [
                        BIN / "trustdial-verify",
                        "proxy",
                        "--upstream",
                        upstream,
                        "--pcrs",
                        work / "pcrs.json",
                        "--root",
                        root,
                        "--model",
                        f"smollm2={digest}",
                    ]
                )
                processes.append(proxy)
                urls[label] = proxy_ready["url"]
            app = openai.OpenAI(base_url=urls["direct"] + "/v1", api_key="unused", _strict_response_validation=True)
            messages: Any = [{"role": "user", "content": QUESTION}]
            answer = app.chat.completions.create(model="smollm2", messages=messages, max_tokens=32, temperature=0)
            evidence = answer.model_extra or {}
            receipt = cbor2.loads(base64.b64decode(evidence["trustdial"]["receipt"]))
            statement = cbor2.loads(receipt["statement"])
            print(f"Q: {QUESTION}\nA: {answer.choices[0].message.content}")
            print(json.dumps({
                "verified": evidence.get("trustdial_verified"), "op": statement["op"],
                "bundle_digest": statement["model"].hex(), "seq": statement["seq"],
                "timestamp_ms": statement["timestamp_ms"], "params": statement["params"],
                "batch_size": cbor2.loads(cbor2.loads(receipt["seal"])[2])["size"],
            }, indent=1))  # fmt: skip
            tampered = openai.OpenAI(base_url=urls["tampered"] + "/v1", api_key="unused")
            released = ""
            try:
                stream = tampered.chat.completions.create(model="smollm2", messages=messages, max_tokens=32,
                                                          temperature=0, stream=True)  # fmt: skip
                for chunk in stream:
                    if chunk.choices:
                        released += chunk.choices[0].delta.content or ""
                print("tampered stream: NOT refused (this is a bug)")
                return 1
            except openai.APIError as err:
                print(f"tampered stream: refused after releasing {released!r}: [{err.code}] {err.message[:120]}")
            box.shutdown()
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
