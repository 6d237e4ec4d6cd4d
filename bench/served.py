"""Served requests/s: ``trustdial serve`` + ``trustdial gateway`` against the server a user would
write instead, in one run, on loopback.

Sides (each a set of real processes started the way users start them):

* ``trustdial``: ``trustdial serve`` (simulated NSM, every other option at its default) and
  ``trustdial gateway`` in front of it.
* ``plain``: a plain FastAPI + onnxruntime server written below (:func:`plain_app`, about 30
  lines): same model (the 1.07 M-parameter reference MLP 784->1024->256->10), same JSON request
  and response format as the gateway's ``POST /v1/infer``, same uvicorn settings as the gateway,
  onnxruntime with its default session options.
* ``plain-1t`` (``--plain-tuned``): the same plain server with one onnxruntime intra-op thread, as
  ``trustdial serve`` runs by default: the stronger baseline on a small host.
* ``no-receipts`` (measurement only, ``--receipts-off``): the trustdial stack with the receipt
  pipeline replaced by one that returns an empty receipt, built in-process by this file's
  ``--role serve-no-receipts`` (never a ``trustdial serve`` option a deployer could set), with
  the real ``trustdial gateway`` in front. The difference to ``trustdial`` is what receipts cost
  on the served path.

One load generator for every side (:class:`LoadConnection`: raw keep-alive HTTP/1.1 over
asyncio, one request in flight per connection, the same pre-built request bytes), at 16 and 1
connections, sides alternating (ABBA order across rounds), each run ``--seconds`` long after a
warm-up. Per run: requests/s, p50/p99 latency, and CPU per request of every process of the side
(utime + stime of all threads from /proc/PID/stat, the sealer child included) and of the load
generator, plus the per-thread split (/proc/PID/task/*/stat) and the 1-minute load average.
After the trustdial runs a sample of the responses' receipts is verified (seal, inclusion path,
model, tensors, nonce) against the key attested through ``/v1/attestation``; every side's outputs
are compared with onnxruntime run here.

The last line is one JSON object: ``trustdial_rps``, ``plain_rps``, ``ratio`` (medians over the
rounds at 16 connections), ``cpu_us_per_request`` per side, the same with the suffix ``_1`` at
one connection, the spread of every figure and the per-run records.

``--mode hybrid`` measures the tee step of a hybrid pipeline through the gateway instead: every
request also carries ``poseidon_scale`` (the enclave signs ezkl's Poseidon hash of each output at
that scale, what a private zk boundary needs) and ``include_attestation`` (the key-binding document
in every answer), as ``trustdial.pipeline.run.GatewayEnclave`` sends them. The plain server gets the
same bytes (it ignores both fields: a user without attestation has nothing to commit to), so the
ratio is what the hybrid step costs over plain serving; the sampled receipts are checked with the
Poseidon params computed here. The JSON line then carries ``"mode": "hybrid"``.

    .venv/bin/python bench/served.py [--quick] [--receipts-off] [--record] [--mode hybrid]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from json_line import emit
from pydantic import BaseModel

RESULTS = Path(__file__).resolve().parent / "results" / "served.json"
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PCRS = {0: b"\x01" * 48, 1: b"\x02" * 48, 2: b"\x03" * 48}
MODEL = "mlp"
MODES = ("infer", "hybrid")
#: the Poseidon scale of ``--mode hybrid`` requests (an ezkl input scale)
HYBRID_SCALE = 7
#: what the gateway passes to uvicorn (enclave_app/gateway_command.py); the plain server uses the same
UVICORN_SETTINGS: dict[str, Any] = {"log_level": "warning", "timeout_keep_alive": 30, "access_log": False}


def progress(message: str) -> None:
    print(f"[served] {message}", file=sys.stderr, flush=True)


# --- the baseline: what a user would write instead --------------------------------------------------------------


class TensorJson(BaseModel):
    dtype: str
    shape: list[int]
    data: str


class InferRequest(BaseModel):
    model: str
    inputs: dict[str, TensorJson]
    nonce: str | None = None


def plain_app(model_path: str, threads: int = 0) -> Any:
    """FastAPI + onnxruntime, the gateway's /v1/infer JSON format, onnxruntime's default options
    (``threads`` > 0: that many intra-op threads, the tuned variant)."""
    import onnxruntime as ort
    from fastapi import FastAPI, HTTPException

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    app = FastAPI()

    @app.post("/v1/infer")
    async def infer(body: InferRequest) -> dict[str, Any]:
        if body.model != MODEL:
            raise HTTPException(404, f"no model named {body.model!r}")
        feeds = {
            name: np.frombuffer(base64.b64decode(t.data), dtype=t.dtype).reshape(t.shape)
            for name, t in body.inputs.items()
        }
        names = [o.name for o in session.get_outputs()]
        outputs = dict(zip(names, session.run(None, feeds), strict=True))
        return {
            "model": body.model,
            "outputs": {
                name: {"dtype": v.dtype.name, "shape": list(v.shape), "data": base64.b64encode(v.tobytes()).decode()}
                for name, v in outputs.items()
            },
        }

    return app


def run_plain(model_path: str, threads: int) -> None:
    import uvicorn

    from enclave_app.addresses import tcp_listener

    sock = tcp_listener("127.0.0.1", 0)  # what the gateway listens on (Nagle off on accepted connections)
    server = uvicorn.Server(uvicorn.Config(plain_app(model_path, threads), **UVICORN_SETTINGS))
    host, port = sock.getsockname()[:2]
    print(json.dumps({"event": "listening", "url": f"http://{host}:{port}"}), flush=True)
    asyncio.run(server.serve(sockets=[sock]))


# --- measurement only: the trustdial server with the receipt pipeline removed ----------------------------------


def run_serve_without_receipts(model_path: str) -> None:
    """``trustdial serve``'s server and service with ``infer`` replaced by a run on the event loop's
    thread (as the server runs a small bound model) that returns an empty receipt. Exists only here."""
    from trustdial_verifier.unstable.tensors import Tensor

    from enclave_app.addresses import parse_address
    from enclave_app.models import ModelRegistry, load_model
    from enclave_app.nsm.selection import open_nsm
    from enclave_app.serve_command import DEFAULT_THREADS
    from enclave_app.server import EnclaveServer
    from enclave_app.service import EnclaveService

    class ServiceWithoutReceipts(EnclaveService):
        async def infer(
            self, model_name: Any, inputs: dict[str, Tensor], nonce: Any, poseidon_scale: Any = None
        ) -> tuple[dict[str, Tensor], bytes]:
            model = self.registry.get(model_name)
            feeds = {name: tensor.to_array() for name, tensor in inputs.items()}
            model.check_inputs(feeds)
            outputs = model.run(feeds)
            return {name: Tensor.from_array(array) for name, array in outputs.items()}, b""

    registry = ModelRegistry([load_model(Path(model_path), MODEL, intra_op_threads=DEFAULT_THREADS)])
    service = ServiceWithoutReceipts(registry, open_nsm("simulated", simulated_pcrs=PCRS), sealer="thread")

    async def main() -> None:
        server = EnclaveServer(service)
        bound = await server.start(parse_address("tcp:127.0.0.1:0"))
        print(json.dumps({"event": "listening", "address": str(bound)}), flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        service.close()


# --- processes and their CPU time -------------------------------------------------------------------------------


def _ticks(stat_path: str) -> int:
    with open(stat_path) as handle:
        fields = handle.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the sealer process of ``trustdial serve``)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rpartition(")")[2].split()[1])
        except OSError:
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def cpu_snapshot(pids: dict[str, int]) -> dict[str, dict[str, int]]:
    """Per named process: ``total`` ticks and ticks per thread (``main`` is the thread whose id is the pid)."""
    out: dict[str, dict[str, int]] = {}
    for name, pid in pids.items():
        threads: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    threads["main" if int(tid) == pid else f"tid{tid}"] = _ticks(f"/proc/{pid}/task/{tid}/stat")
        total = 0
        with contextlib.suppress(OSError):
            total = _ticks(f"/proc/{pid}/stat")
        out[name] = {"total": total, **threads}
    return out


def cpu_delta(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], requests: int) -> dict[str, Any]:
    """µs of CPU per request, per process (``total``) and per thread (threads above 2 % of the process)."""
    per_request = 1e6 / CLK_TCK / max(requests, 1)
    result: dict[str, Any] = {}
    for name, now in after.items():
        then = before.get(name, {})
        total = (now["total"] - then.get("total", 0)) * per_request
        threads = {
            t: round((v - then.get(t, 0)) * per_request, 1)
            for t, v in now.items()
            if t != "total" and (v - then.get(t, 0)) * per_request > 0.02 * max(total, 1e-9)
        }
        result[name] = {"us": round(total, 1), "threads": dict(sorted(threads.items(), key=lambda kv: -kv[1]))}
    return result


def start(
    command: list[str], timeout: float = 120.0, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not lines or not lines[0]:
        process.kill()
        process.wait()
        raise RuntimeError(f"{command[:3]} printed no ready line")
    return process, json.loads(lines[0])


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


@dataclass
class Side:
    name: str
    url: str
    processes: dict[str, subprocess.Popen[str]]
    extra: dict[str, Any] = field(default_factory=dict)

    def pids(self) -> dict[str, int]:
        pids: dict[str, int] = {}
        for name, process in self.processes.items():
            for index, pid in enumerate(process_tree(process.pid)):
                pids[name if index == 0 else f"{name}-child{index}"] = pid
        return pids

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            stop(process)


def start_trustdial(
    workdir: Path, model: Path, *, receipts: bool, tree: Path | None = None, serve_args: list[str] | None = None
) -> Side:
    """``tree``: run ``trustdial`` from another checkout's sources (its directory first on PYTHONPATH)."""
    env = None if tree is None else {**os.environ, "PYTHONPATH": str(tree)}
    pcrs = workdir / "pcrs.json"
    pcrs.write_text(json.dumps({str(k): v.hex() for k, v in PCRS.items()}))
    tag = "baseline" if tree is not None else "variant" if serve_args else "branch"
    root = workdir / f"root-{tag}-{receipts}.pem"
    if receipts:
        command = [
            str(BIN / "trustdial"), "serve", "--model", f"{MODEL}={model}", "--listen", "tcp:127.0.0.1:0",
            "--nsm", "simulated", "--simulated-pcrs-from", str(pcrs), "--simulated-root-out", str(root),
            *(serve_args or []),
        ]  # fmt: skip
    else:
        command = [sys.executable, __file__, "--role", "serve-no-receipts", "--model", str(model)]
    server, ready = start(command, env=env)
    try:
        gateway, gateway_ready = start(
            [str(BIN / "trustdial"), "gateway", "--enclave", ready["address"], "--listen", "127.0.0.1:0"], env=env
        )
    except BaseException:
        stop(server)
        raise
    name = ("trustdial" if receipts else "no-receipts") if tree is None else "trustdial-baseline"
    if serve_args:
        name = "trustdial-variant"
    return Side(name, gateway_ready["url"], {"serve": server, "gateway": gateway}, {"ready": ready, "root": root})


def start_plain(model: Path, threads: int = 0) -> Side:
    command = [sys.executable, __file__, "--role", "plain", "--model", str(model), "--threads", str(threads)]
    server, ready = start(command)
    return Side("plain" if threads == 0 else f"plain-{threads}t", ready["url"], {"plain": server})


# --- the load generator -----------------------------------------------------------------------------------------


@dataclass
class Requests:
    """Pre-built ``POST /v1/infer`` requests (one nonce each), cycled through by every connection."""

    raw: list[bytes]
    nonces: list[bytes]
    x: np.ndarray
    mode: str = "infer"

    @classmethod
    def build(cls, host: str, count: int = 256, mode: str = "infer") -> Requests:
        x = np.random.default_rng(7).standard_normal((1, 784)).astype(np.float32)
        data = base64.b64encode(x.tobytes()).decode()
        extra: dict[str, Any] = {}
        if mode == "hybrid":
            extra = {"poseidon_scale": HYBRID_SCALE, "include_attestation": True}
        raw, nonces = [], []
        for _ in range(count):
            nonce = os.urandom(32)
            body = json.dumps(
                {"model": MODEL, "inputs": {"x": {"dtype": "float32", "shape": [1, 784], "data": data}},
                 "nonce": nonce.hex(), **extra}, separators=(",", ":"),
            ).encode()  # fmt: skip
            head = (
                f"POST /v1/infer HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            raw.append(head + body)
            nonces.append(nonce)
        return cls(raw, nonces, x, mode)


@dataclass
class Window:
    """What a run counts: responses completed between ``opened`` and ``closed`` (perf_counter_ns)."""

    opened: int = 1 << 62
    closed: int = 1 << 62
    stopping: bool = False
    latencies: list[int] = field(default_factory=list)
    errors: int = 0
    samples: list[tuple[int, bytes]] = field(default_factory=list)  # (request index, body)
    sample_every: int = 97


class LoadConnection(asyncio.Protocol):
    """One keep-alive connection, one request in flight, next request sent when the response is complete."""

    def __init__(self, requests: Requests, window: Window, offset: int, finished: asyncio.Future[None]) -> None:
        self.requests = requests
        self.window = window
        self.index = offset
        self.finished = finished
        self.buffer = bytearray()
        self.need = -1
        self.body_at = 0
        self.status = 0
        self.sent = 0
        self.count = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        if self.window.stopping:
            self.transport.close()
            return
        self.index = (self.index + 1) % len(self.requests.raw)
        self.sent = time.perf_counter_ns()
        self.transport.write(self.requests.raw[self.index])

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            if self.need < 0:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buffer[:end]).lower()
                self.status = int(head[9:12])
                at = head.find(b"\r\ncontent-length:") + 17
                stop = head.find(b"\r\n", at)
                length = int(head[at : stop if stop > 0 else len(head)])
                self.body_at = end + 4
                self.need = self.body_at + length
            if len(buffer) < self.need:
                return
            now = time.perf_counter_ns()
            window = self.window
            if window.opened <= now < window.closed:
                if self.status == 200:
                    window.latencies.append(now - self.sent)
                    self.count += 1
                    if self.count % window.sample_every == 1 and len(window.samples) < 64:
                        window.samples.append((self.index, bytes(buffer[self.body_at : self.need])))
                else:
                    window.errors += 1
            elif self.status != 200:
                window.errors += 1
            del buffer[: self.need]
            self.need = -1
            self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.finished.set_result(None)


async def drive(
    url: str, requests: Requests, connections: int, warmup: float, seconds: float, pids: dict[str, int]
) -> dict[str, Any]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    loop = asyncio.get_running_loop()
    window = Window()
    finished = []
    for index in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        finished.append(done)
        await loop.create_connection(
            lambda d=done, i=index: LoadConnection(requests, window, i * 16, d),
            host,
            int(port),  # type: ignore[misc]
        )
    pids = {**pids, "loadgen": os.getpid()}
    await asyncio.sleep(warmup)
    load = os.getloadavg()[0]
    before = cpu_snapshot(pids)
    window.opened = time.perf_counter_ns()
    await asyncio.sleep(seconds)
    window.closed = time.perf_counter_ns()
    after = cpu_snapshot(pids)
    window.stopping = True
    await asyncio.wait_for(asyncio.gather(*finished), 60)
    elapsed = (window.closed - window.opened) / 1e9
    count = len(window.latencies)
    latencies = sorted(window.latencies)
    cpu = cpu_delta(before, after, count)
    side_cpu = sum(v["us"] for k, v in cpu.items() if k != "loadgen")
    return {
        "rps": round(count / elapsed, 1),
        "requests": count,
        "errors": window.errors,
        "p50_ms": round(latencies[count // 2] / 1e6, 3) if count else None,
        "p99_ms": round(latencies[min(count - 1, int(count * 0.99))] / 1e6, 3) if count else None,
        "cpu_us_per_request": round(side_cpu, 1),
        "cpu": cpu,
        "load_avg_1m": round(load, 2),
        "samples": window.samples,
    }


# --- checks on what the sides answered --------------------------------------------------------------------------


def reference_outputs(model: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return np.asarray(ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0])


def check_samples(side: Side, samples: list[tuple[int, bytes]], requests: Requests, expected_y: np.ndarray) -> int:
    """Every sampled response's outputs equal onnxruntime's here; on the trustdial side, every sampled
    receipt verifies against the attested key. Returns how many receipts were verified."""
    from trustdial_verifier.unstable.tensors import Tensor

    parsed = []
    for index, raw in samples:
        body = json.loads(raw)
        y = body["outputs"]["y"]
        got = np.frombuffer(base64.b64decode(y["data"]), dtype=y["dtype"]).reshape(y["shape"])
        if not np.allclose(got, expected_y, rtol=1e-4, atol=1e-5):
            raise AssertionError(f"{side.name}: outputs differ from onnxruntime's")
        parsed.append((index, body, Tensor(y["dtype"], tuple(y["shape"]), base64.b64decode(y["data"]))))
    if not side.name.startswith("trustdial"):
        return 0
    from cryptography import x509
    from trustdial_verifier.unstable.client import Client, ExpectedEnclave
    from trustdial_verifier.unstable.receipts import ReceiptExpectation, check_statement, open_receipt

    sha = bytes.fromhex(side.extra["ready"]["models"][MODEL])
    expected = ExpectedEnclave(
        pcrs=PCRS, models={MODEL: sha}, root=x509.load_pem_x509_certificate(side.extra["root"].read_bytes())
    )
    with Client(side.url, expected) as client:
        client.infer(MODEL, {"x": Tensor.from_array(requests.x)})  # the verifying client end to end
        key = client.attested_key()
    inputs = {"x": Tensor.from_array(requests.x)}
    params: dict[str, int | str] = {}
    if requests.mode == "hybrid":
        from trustdial_verifier.unstable.proof import tensor_poseidon

        params = {
            "poseidon_scale": HYBRID_SCALE,
            "poseidon/y": tensor_poseidon(expected_y.astype(np.float32).ravel().tolist(), HYBRID_SCALE, as_f32=True),
        }
    for index, body, y in parsed:
        if requests.mode == "hybrid" and base64.b64decode(body["attestation"]) != key.binding_document:
            raise AssertionError(f"{side.name}: the answer's attestation is not the key-binding document")
        opened = open_receipt(
            base64.b64decode(body["receipt"]), public_key=key.public_key, attestation_digest=key.attestation_digest
        )
        check_statement(
            opened.statement,
            ReceiptExpectation(
                models=frozenset({sha}),
                inputs=inputs,
                outputs={"y": y},
                nonce=requests.nonces[index],
                op="infer",
                params=params,
            ),
        )
    return len(parsed)


# --- the run ----------------------------------------------------------------------------------------------------


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    roles = ("bench", "plain", "serve-no-receipts")
    parser.add_argument("--role", choices=roles, default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds of load before each measured window")
    parser.add_argument("--rounds", type=int, default=3, help="alternations per connection count")
    parser.add_argument("--connections", default="16,1", help="comma-separated connection counts")
    parser.add_argument("--receipts-off", action="store_true", help="also run the trustdial stack without receipts")
    parser.add_argument(
        "--plain-tuned", action="store_true", help="also run the plain server with one intra-op thread (as serve)"
    )
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="also run trustdial from this directory's sources (e.g. `git archive main enclave_app trustdial`"
        " unpacked): before/after in the same run",
    )
    parser.add_argument(
        "--variant", help="also run trustdial serve with these extra options (one string, e.g. '--sealer thread')"
    )
    parser.add_argument(
        "--mode", choices=MODES, default="infer", help="hybrid: the tee step of a hybrid pipeline (Poseidon params)"
    )
    parser.add_argument("--quick", action="store_true", help="2 s runs, one round (a smoke run)")
    parser.add_argument("--record", action="store_true", help=f"also write the JSON line to {RESULTS.name}")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.role == "plain":
        run_plain(args.model, args.threads)
        return
    if args.role == "serve-no-receipts":
        run_serve_without_receipts(args.model)
        return
    if args.quick:
        args.seconds, args.warmup, args.rounds = 2.0, 0.5, 1
    counts = [int(c) for c in args.connections.split(",")]
    from enclave_app.reference_models import build_mlp

    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    runs: list[dict[str, Any]] = []
    verified = 0
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model = workdir / "mlp.onnx"
        model.write_bytes(build_mlp())
        progress(f"starting the sides (load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores)")
        sides = [start_trustdial(workdir, model, receipts=True), start_plain(model)]
        if args.baseline_tree is not None:
            sides.append(start_trustdial(workdir, model, receipts=True, tree=args.baseline_tree.resolve()))
        if args.variant:
            sides.append(start_trustdial(workdir, model, receipts=True, serve_args=args.variant.split()))
        if args.receipts_off:
            sides.append(start_trustdial(workdir, model, receipts=False))
        if args.plain_tuned:
            sides.append(start_plain(model, threads=1))
        try:
            requests = Requests.build("127.0.0.1", mode=args.mode)
            expected_y = reference_outputs(model, requests.x)
            for connections in counts:
                for round_index in range(args.rounds):
                    order = sides if round_index % 2 == 0 else list(reversed(sides))
                    for side in order:
                        result = asyncio.run(
                            drive(side.url, requests, connections, args.warmup, args.seconds, side.pids())
                        )
                        samples = result.pop("samples")
                        verified += check_samples(side, samples, requests, expected_y)
                        if result["errors"]:
                            raise AssertionError(f"{side.name}: {result['errors']} requests failed")
                        record = {"side": side.name, "connections": connections, "round": round_index, **result}
                        runs.append(record)
                        progress(
                            f"{side.name:>11} c={connections:<2} round {round_index}: {result['rps']:8.1f} req/s "
                            f"p50 {result['p50_ms']} ms p99 {result['p99_ms']} ms, "
                            f"{result['cpu_us_per_request']} µs CPU/req, load {result['load_avg_1m']}"
                        )
        finally:
            for side in sides:
                side.stop()
    out: dict[str, Any] = {}
    for connections in counts:
        suffix = "" if connections == 16 else f"_{connections}"
        by_side = {s.name: [r for r in runs if r["side"] == s.name and r["connections"] == connections] for s in sides}
        rps = {name: statistics.median(r["rps"] for r in rs) for name, rs in by_side.items()}
        ratios = [
            t["rps"] / p["rps"]
            for t, p in zip(by_side["trustdial"], by_side["plain"], strict=True)  # same round: alternated pairs
        ]
        out[f"trustdial_rps{suffix}"] = round(rps["trustdial"], 1)
        out[f"plain_rps{suffix}"] = round(rps["plain"], 1)
        out[f"ratio{suffix}"] = round(rps["trustdial"] / rps["plain"], 3)
        out[f"ratio_per_round{suffix}"] = [round(r, 3) for r in ratios]
        out[f"cpu_us_per_request{suffix}"] = {
            name: round(statistics.median(r["cpu_us_per_request"] for r in rs), 1) for name, rs in by_side.items()
        }
        out[f"spread{suffix}"] = {
            name: {k: _summary([r[k] for r in rs]) for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")}
            for name, rs in by_side.items()
        }
        if "no-receipts" in rps:
            out[f"no_receipts_rps{suffix}"] = round(rps["no-receipts"], 1)
            out[f"receipts_ratio{suffix}"] = round(rps["trustdial"] / rps["no-receipts"], 3)
        if "trustdial-baseline" in rps:
            out[f"baseline_rps{suffix}"] = round(rps["trustdial-baseline"], 1)
            out[f"baseline_ratio{suffix}"] = round(rps["trustdial-baseline"] / rps["plain"], 3)
        if "trustdial-variant" in rps:
            out[f"variant_rps{suffix}"] = round(rps["trustdial-variant"], 1)
            out[f"variant_ratio{suffix}"] = round(rps["trustdial-variant"] / rps["plain"], 3)
        if "plain-1t" in rps:
            out[f"plain_1t_rps{suffix}"] = round(rps["plain-1t"], 1)
            out[f"ratio_vs_plain_1t{suffix}"] = round(rps["trustdial"] / rps["plain-1t"], 3)
    out.update(
        mode=args.mode,
        receipts_verified=verified,
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
