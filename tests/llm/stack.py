"""The LLM stack as real processes on 127.0.0.1: ``trustdial serve --llm`` (simulated NSM) and ``trustdial gateway``
(twice: enclave A serves the tiny bundle as ``tiny`` and a different bundle as ``tiny-b``; enclave B, with its own
receipt key, serves ``tiny``), an adversarial middlebox in this process, and ``trustdial-verify proxy`` in front
of the middlebox, which expects the tiny bundle's digest for both ``tiny`` and ``tiny-b``."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from serve_gateway import BIN, ServeAndGateway, start_process, start_serve_and_gateway, stop_process
from trustdial_verifier._internal.llm.bundle import build_manifest, read_manifest, write_manifest

DATA = Path(__file__).resolve().parents[1] / "data" / "llm"
TINY = DATA / "tiny"
PCRS = {"0": "a0" * 48, "1": "a1" * 48, "2": "a2" * 48}

Events = list[dict[str, Any]]


def other_bundle(directory: Path) -> Path:
    """The tiny bundle's files under another manifest (another name): another bundle digest."""
    shutil.copytree(TINY, directory)
    manifest = read_manifest(directory)
    (directory / "bundle.json").unlink()
    write_manifest(directory, build_manifest(directory, {**manifest.meta, "name": "tiny-b"}))
    return directory


def sse_events(body: bytes) -> list[str]:
    """The data of each event, in order ("[DONE]" included)."""
    return [block[5:].strip() for block in body.decode().split("\n\n") if block.startswith("data:")]


def sse_body(datas: list[str]) -> bytes:
    return b"".join(f"data: {d}\n\n".encode() for d in datas)


@dataclass
class Middlebox:
    """Forwards to enclave A's gateway; ``rewrite`` (if set) may change a completion's answer (plain: the JSON
    object; stream: the list of event data strings) or ``route`` send it to another upstream."""

    upstream: str
    other_upstream: str
    rewrite_plain: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    rewrite_stream: Callable[[list[str]], list[str]] | None = None
    use_other: bool = False
    replay_next: bytes | None = None
    last_body: bytes = b""
    last_status: int = 0
    last_type: str = ""
    server: ThreadingHTTPServer | None = field(default=None, repr=False)

    def reset(self) -> None:
        self.rewrite_plain = self.rewrite_stream = None
        self.use_other = False
        self.replay_next = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"


def start_middlebox(box: Middlebox) -> Middlebox:
    client = httpx.Client(timeout=60)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            answer = client.get(box.upstream + self.path)
            self._answer(answer.status_code, answer.headers.get("content-type", "application/json"), answer.content)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k: v for k, v in self.headers.items() if k.lower().startswith("x-trustdial")}
            headers["content-type"] = "application/json"
            if box.replay_next is not None:  # an earlier answer, for an earlier nonce
                body, box.replay_next = box.replay_next, None
                self._answer(200, box.last_type, body)
                return
            upstream = box.other_upstream if box.use_other else box.upstream
            answer = client.post(upstream + self.path, content=raw, headers=headers)
            content_type = answer.headers.get("content-type", "application/json")
            body = answer.content
            if answer.status_code == 200:
                if content_type.startswith("text/event-stream") and box.rewrite_stream is not None:
                    body = sse_body(box.rewrite_stream(sse_events(body)))
                elif content_type.startswith("application/json") and box.rewrite_plain is not None:
                    body = json.dumps(box.rewrite_plain(json.loads(body))).encode()
            box.last_body, box.last_status, box.last_type = answer.content, answer.status_code, content_type
            self._answer(answer.status_code, content_type, body)

    box.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.server.daemon_threads = True
    threading.Thread(target=box.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return box


@dataclass
class LlmStack:
    a: ServeAndGateway
    b: ServeAndGateway
    middlebox: Middlebox
    proxy_url: str
    digests: dict[str, str]
    root_a: Path
    pcrs_path: Path
    processes: list[Any]

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process)
        self.b.stop()
        self.a.stop()
        if self.middlebox.server is not None:
            self.middlebox.server.shutdown()


def start_stack(work: Path) -> LlmStack:
    pcrs_path = work / "pcrs.json"
    pcrs_path.write_text(json.dumps(PCRS))
    other = other_bundle(work / "tiny-b")
    a = start_serve_and_gateway(
        [], pcrs_path, work / "root-a.pem", serve_args=["--llm", f"tiny={TINY}", "--llm", f"tiny-b={other}"]
    )
    try:
        b = start_serve_and_gateway([], pcrs_path, work / "root-b.pem", serve_args=["--llm", f"tiny={TINY}"])
    except BaseException:
        a.stop()
        raise
    box = start_middlebox(Middlebox(a.url, b.url))
    tiny_digest = read_manifest(TINY).digest().hex()
    digests = {"tiny": tiny_digest, "tiny-b": read_manifest(other).digest().hex()}
    try:
        proxy, ready = start_process(
            [
                BIN / "trustdial-verify", "proxy", "--upstream", box.url, "--pcrs", pcrs_path,
                "--root", work / "root-a.pem", "--model", f"tiny={tiny_digest}", "--model", f"tiny-b={tiny_digest}",
            ]
        )  # fmt: skip
    except BaseException:
        b.stop()
        a.stop()
        raise
    return LlmStack(a, b, box, ready["url"], digests, work / "root-a.pem", pcrs_path, [proxy])
