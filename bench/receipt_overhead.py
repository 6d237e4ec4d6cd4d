"""TEE receipt overhead: plain onnxruntime runs/s against runs/s with commitments and receipts,
measured in one process, interleaved rounds, same session; plus receipt-key costs and
end-to-end verified requests/s through gateway + enclave server on loopback.

Modes: ``per-request`` (one signature per response) and ``batch`` (Merkle micro-batch of up to
``--batch`` responses, sealed early once its oldest response waited ``--budget-ms``, one
signature per batch, every response keeps its own inclusion path), each with the receipt work
on the pipeline's own thread (as the server runs it) or ``-inline`` in the inference thread;
``batch-process`` runs the batch mode's receipt work in a sealer process fed through a
shared-memory ring (``enclave_app.receipts.process_pipeline``; its CPU time is counted in
``cpu_ratio``); ``bound-process`` is the same sealer with the session bound to the ring's slots
(``enclave_app.receipts.bound_model``: onnxruntime reads its input from and writes its output
into the slot the sealer hashes, through an IOBinding per slot).

The plain side is measured both ways onnxruntime offers, ``session.run`` and
``run_with_iobinding`` on one fixed binding (input bound once, so no per-run input handling at
all); the headline compares against the faster of the two. The last line is one JSON object:
``plain_per_s``, ``attested_per_s``, ``ratio``, ``receipt_us`` for the best mode on the
1M-parameter MLP, then ``modes`` (per mode), ``cnn``, ``keys`` and ``e2e``.

    .venv/bin/python bench/receipt_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from trustdial_verifier.unstable.receipts import ReceiptExpectation, check_statement, open_receipt
from trustdial_verifier.unstable.tensors import Tensor

from enclave_app.receipts.bound_model import BoundModel
from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.pipeline import ReceiptPipeline
from enclave_app.receipts.process_pipeline import ProcessReceiptPipeline
from enclave_app.reference_models import build_cnn, build_mlp

MODEL_SHA = b"\x11" * 32
ATTESTATION = b"\x22" * 32


def progress(message: str) -> None:
    print(f"[receipt_overhead] {message}", file=sys.stderr, flush=True)


class AttestedRunner:
    """What the enclave does per response: run, then hand the tensors to the receipt pipeline
    (commitments, statement, Merkle micro-batch, one signature per batch on its own thread).
    Every receipt lands in ``receipts`` (the pipeline's ``on_receipt`` sink) so that the bench
    can count and verify them."""

    def __init__(
        self,
        session: ort.InferenceSession,
        batch: int,
        budget_s: float,
        *,
        threaded: bool,
        poll_s: float,
        key_type: str = "p256",
        process: bool = False,
        bound: bool = False,
    ) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.output_names = [o.name for o in session.get_outputs()]
        self.key = ReceiptKey.generate(key_type)
        self.receipts: list[bytes] = []
        self.consumed = 0  # receipts checked (or dropped after warm-up) so far
        self.pipeline: ReceiptPipeline | ProcessReceiptPipeline
        self.child_cpu: Callable[[], float] | None = None  # a sealer process's CPU seconds, if any
        self.bound: BoundModel | None = None
        if process or bound:  # the sealer in its own process, fed through a shared-memory ring
            self.pipeline = ProcessReceiptPipeline(
                self.key, ATTESTATION, max_batch=batch, max_wait=budget_s, poll=poll_s,
                on_receipt=self.receipts.append,
            )  # fmt: skip
            self.child_cpu = self.pipeline.child_cpu_seconds
            if bound:
                self.bound = BoundModel(self.pipeline, session, MODEL_SHA)
        else:
            self.pipeline = ReceiptPipeline(
                self.key, ATTESTATION, max_batch=batch, max_wait=budget_s, threaded=threaded, poll=poll_s,
                on_receipt=self.receipts.append,
            )  # fmt: skip

    def __call__(self, feed: dict[str, np.ndarray], nonce: bytes) -> None:
        """The plain loop's exact call (same session, same feed object), then the receipt; bound
        to the ring: the feed copied into the next slot, run on that slot's binding, published."""
        if self.bound is not None:
            self.bound.run(feed, nonce, want_future=False, copy=False)
            return
        values = self.session.run(None, feed)
        self.respond(feed[self.input_name], values, nonce)

    def respond(self, x: np.ndarray, values: list[np.ndarray], nonce: bytes) -> None:
        outputs = dict(zip(self.output_names, values, strict=True))
        self.pipeline.submit("infer", MODEL_SHA, {self.input_name: x}, outputs, nonce, want_future=False)

    def check(self, x: np.ndarray, values: list[np.ndarray], nonce: bytes, expected_count: int, sample: int) -> int:
        """Every run produced a receipt (count); a random sample of them verifies against this
        key, the attestation digest and the actual tensors. Returns how many were verified."""
        if len(self.receipts) != expected_count:
            raise SystemExit(f"expected {expected_count} receipts, found {len(self.receipts)}")
        seqs = []
        for index in sorted(random.sample(range(expected_count), min(sample, expected_count))):
            statement = open_receipt(
                self.receipts[index], public_key=self.key.public_key_der(), attestation_digest=ATTESTATION
            ).statement
            check_statement(
                statement,
                ReceiptExpectation(
                    models=frozenset({MODEL_SHA}),
                    inputs={self.input_name: Tensor.from_array(x)},
                    outputs={n: Tensor.from_array(v) for n, v in zip(self.output_names, values, strict=True)},
                    nonce=nonce,
                    min_seq=self.consumed + index + 1,
                ),
            )
            seqs.append((index, statement.seq))
        if any(seq != self.consumed + index + 1 for index, seq in seqs):
            raise SystemExit(f"receipts out of sequence order: {seqs[:5]}")
        self.consumed += expected_count
        self.receipts.clear()
        return len(seqs)


def timed(
    fn: Callable[[], Any],
    count: int,
    finish: Callable[[], None] | None = None,
    child_cpu: Callable[[], float] | None = None,
) -> tuple[float, float]:
    """(wall µs, process CPU µs over all threads) per call; ``finish`` (waiting for every
    receipt, the last seal included) is inside both. ``child_cpu`` (a sealer process's CPU
    seconds, published after each of its seals) is added to the CPU figure."""
    child = child_cpu() if child_cpu is not None else 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        fn()
    if finish is not None:
        finish()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if child_cpu is not None:
        cpu += child_cpu() - child
    return wall / count * 1e6, cpu / count * 1e6


def rate(fn: Callable[[], None], count: int, finish: Callable[[], None] | None = None) -> float:
    """Calls per second; ``finish`` (e.g. waiting for every receipt) is inside the timing."""
    return 1e6 / timed(fn, count, finish)[0]


def measure_model(name: str, model: bytes, shape: tuple[int, ...], args: argparse.Namespace) -> dict[str, Any]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    feed = {session.get_inputs()[0].name: x}
    nonce = os.urandom(32)
    budget, poll = args.budget_ms / 1000, args.poll_ms / 1000
    modes = {
        "per-request": AttestedRunner(session, 1, budget, threaded=True, poll_s=poll),
        "per-request-inline": AttestedRunner(session, 1, budget, threaded=False, poll_s=poll),
        "batch": AttestedRunner(session, args.batch, budget, threaded=True, poll_s=poll),
        "batch-inline": AttestedRunner(session, args.batch, budget, threaded=False, poll_s=poll),
        "batch-process": AttestedRunner(session, args.batch, budget, threaded=True, poll_s=poll, process=True),
        "bound-process": AttestedRunner(session, args.batch, budget, threaded=True, poll_s=poll, bound=True),
    }
    for mode in [m for m in modes if args.modes and m not in args.modes]:
        modes.pop(mode).pipeline.close()
    values = session.run(None, feed)
    binding = session.io_binding()  # the plain side's other API: input bound once, output kept by onnxruntime
    binding.bind_cpu_input(session.get_inputs()[0].name, x)
    for output in session.get_outputs():
        binding.bind_output(output.name, "cpu")
    for _ in range(args.runs // 4):  # warm up
        session.run(None, feed)
        session.run_with_iobinding(binding)
        for runner in modes.values():
            runner(feed, nonce)
    for runner in modes.values():
        runner.pipeline.drain()
        runner.consumed += len(runner.receipts)
        runner.receipts.clear()
    plain: list[tuple[float, float]] = []
    plain_bound: list[tuple[float, float]] = []
    attested: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    verified = 0
    for round_index in range(args.rounds):
        plain.append(timed(lambda: session.run(None, feed), args.runs))
        plain_bound.append(timed(lambda: session.run_with_iobinding(binding), args.runs))
        for mode, runner in modes.items():
            call: Callable[[], Any] = (
                functools.partial(runner.bound.run, feed, nonce, want_future=False, copy=False)
                if runner.bound is not None  # one Python frame per run, as the plain lambda has
                else functools.partial(runner, feed, nonce)
            )
            attested[mode].append(timed(call, args.runs, runner.pipeline.drain, runner.child_cpu))
            verified += runner.check(x, values, nonce, args.runs, args.verify_sample)
        progress(
            f"{name}: round {round_index + 1}/{args.rounds} plain {plain[-1][0]:.1f} µs/run, "
            f"iobinding {plain_bound[-1][0]:.1f}"
        )
    # Receipt work alone (commitments + statement + amortized sealing), same inputs and outputs,
    # back to back without inference in between (warm caches: a lower bound of its cost).
    receipt_alone: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    for _ in range(args.rounds):
        for mode, runner in modes.items():
            if runner.bound is not None:
                continue  # its receipt work cannot run without the inference it is bound to
            receipt_alone[mode].append(
                timed(
                    lambda runner=runner: runner.respond(x, values, nonce),
                    args.runs,
                    runner.pipeline.drain,
                    runner.child_cpu,
                )
            )
            verified += runner.check(x, values, nonce, args.runs, args.verify_sample)
    for runner in modes.values():
        runner.pipeline.close()
    run_us = statistics.median(w for w, _ in plain)
    bound_us = statistics.median(w for w, _ in plain_bound)
    baseline = plain if run_us <= bound_us else plain_bound
    plain_us = min(run_us, bound_us)
    plain_cpu_us = statistics.median(c for _, c in baseline)
    result: dict[str, Any] = {
        "plain_per_s": round(1e6 / plain_us, 1),
        "plain_us": round(plain_us, 2),
        "plain_api": "session.run" if run_us <= bound_us else "run_with_iobinding",
        "plain_run_us": round(run_us, 2),
        "plain_iobinding_us": round(bound_us, 2),
        "plain_cpu_us": round(plain_cpu_us, 2),
        "receipts_verified": verified,
        "modes": {},
    }
    for mode in modes:
        wall_us = statistics.median(w for w, _ in attested[mode])
        cpu = statistics.median(c for _, c in attested[mode])
        result["modes"][mode] = {
            "attested_per_s": round(1e6 / wall_us, 1),
            "ratio": round(plain_us / wall_us, 4),
            "attested_cpu_us": round(cpu, 2),
            "cpu_ratio": round(plain_cpu_us / cpu, 4),
            "receipt_us": round(wall_us - plain_us, 2),
            "receipt_cpu_us": round(cpu - plain_cpu_us, 2),
        }
        if receipt_alone[mode]:
            result["modes"][mode]["receipt_alone_us"] = round(statistics.median(w for w, _ in receipt_alone[mode]), 2)
            result["modes"][mode]["receipt_alone_cpu_us"] = round(
                statistics.median(c for _, c in receipt_alone[mode]), 2
            )
    return result


def measure_keys(count: int) -> dict[str, Any]:
    message = os.urandom(200)
    out: dict[str, Any] = {}
    for key_type in ("ed25519", "p256"):
        key = ReceiptKey.generate(key_type)
        signature = key.sign(message)
        public = key.private_key.public_key()
        sign_per_s = rate(lambda key=key: key.sign(message), count)
        if key_type == "ed25519":
            der = key.private_key.sign(message)  # type: ignore[call-arg]
            verify = lambda public=public, der=der: public.verify(der, message)  # noqa: E731
        else:
            der = key.private_key.sign(message, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
            verify = lambda public=public, der=der: public.verify(der, message, ec.ECDSA(hashes.SHA256()))  # noqa: E731
        verify_per_s = rate(verify, count)
        out[key_type] = {
            "sign_us": round(1e6 / sign_per_s, 2),
            "verify_us": round(1e6 / verify_per_s, 2),
            "signature_bytes": len(signature),
        }
    return out


def measure_end_to_end(seconds: float, clients: int) -> dict[str, Any]:
    """Verified requests/s: verifying clients -> gateway -> enclave server (simulated NSM), loopback."""
    import subprocess

    from cryptography import x509
    from trustdial_verifier.unstable.client import Client, ExpectedEnclave

    binary = Path(sys.executable).parent / "trustdial"
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "mlp.onnx"
        model.write_bytes(build_mlp())
        pcrs = {0: b"\x01" * 48, 1: b"\x02" * 48, 2: b"\x03" * 48}
        (Path(tmp) / "pcrs.json").write_text(json.dumps({str(k): v.hex() for k, v in pcrs.items()}))
        root = Path(tmp) / "root.pem"
        processes = []
        try:
            server = subprocess.Popen(
                [str(binary), "serve", "--model", str(model), "--listen", "tcp:127.0.0.1:0", "--nsm", "simulated",
                 "--simulated-pcrs-from", str(Path(tmp) / "pcrs.json"), "--simulated-root-out", str(root)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            processes.append(server)
            ready = json.loads(server.stdout.readline())  # type: ignore[union-attr]
            gateway = subprocess.Popen(
                [str(binary), "gateway", "--enclave", ready["address"], "--listen", "127.0.0.1:0"],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            processes.append(gateway)
            url = json.loads(gateway.stdout.readline())["url"]  # type: ignore[union-attr]
            expected = ExpectedEnclave(
                pcrs=pcrs,
                models={"mlp": bytes.fromhex(ready["models"]["mlp"])},
                root=x509.load_pem_x509_certificate(root.read_bytes()),
            )
            x = Tensor.from_array(np.zeros((1, 784), np.float32))
            done = [0] * clients
            stop = time.monotonic() + seconds

            def worker(index: int) -> None:
                with Client(url, expected) as client:
                    client.infer("mlp", {"x": x})
                    while time.monotonic() < stop:
                        client.infer("mlp", {"x": x})
                        done[index] += 1

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
            start = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - start
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=10)
    return {"verified_req_per_s": round(sum(done) / elapsed, 1), "clients": clients, "seconds": seconds}


RESULTS = Path(__file__).resolve().parent / "results" / "receipt_overhead.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5000, help="runs per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median reported)")
    parser.add_argument("--batch", type=int, default=64, help="max responses per sealed micro-batch")
    parser.add_argument("--budget-ms", type=float, default=2.0, help="latency budget of a micro-batch")
    parser.add_argument("--poll-ms", type=float, default=0.5, help="how often the sealing thread looks for work")
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval for the whole run (default: Python's)",
    )
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (both sides)")
    parser.add_argument("--verify-sample", type=int, default=20, help="receipts verified per mode and round")
    parser.add_argument(
        "--modes", nargs="+", default=None, help="only these receipt modes (default: all, batch-process included)"
    )
    parser.add_argument("--mlp-only", action="store_true", help="skip the CNN, key costs and end-to-end parts")
    parser.add_argument("--e2e-seconds", type=float, default=10.0)
    parser.add_argument("--e2e-clients", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--record", action="store_true", help=f"also write the JSON line to {RESULTS.name}")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where --record writes")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.rounds, args.e2e_seconds = 500, 2, 2.0
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_start = round(os.getloadavg()[0], 2)
    progress(f"MLP 784-1024-256-10 (batch 1), load average {load_start}")
    mlp = measure_model("mlp", build_mlp(), (1, 784), args)
    load_mlp = round(os.getloadavg()[0], 2)
    best_mode = max(mlp["modes"], key=lambda m: mlp["modes"][m]["ratio"])
    best = mlp["modes"][best_mode]
    print(f"MLP plain {mlp['plain_us']} µs; " + "; ".join(f"{m} {v}" for m, v in mlp["modes"].items()))
    summary: dict[str, Any] = {
        "plain_per_s": mlp["plain_per_s"],
        "attested_per_s": best["attested_per_s"],
        "ratio": best["ratio"],
        "receipt_us": best["receipt_us"],
        "best_mode": best_mode,
        "plain_cpu_us": mlp["plain_cpu_us"],
        "attested_cpu_us": best["attested_cpu_us"],
        "cpu_ratio": best["cpu_ratio"],
        "receipt_cpu_us": best["receipt_cpu_us"],
        "headline": "ratio = wall-clock runs/s attested / plain (same session, interleaved rounds; plain = the "
        "faster of session.run and run_with_iobinding)",
        "plain_api": mlp["plain_api"],
        "plain_run_us": mlp["plain_run_us"],
        "plain_iobinding_us": mlp["plain_iobinding_us"],
        "batch": args.batch,
        "budget_ms": args.budget_ms,
        "poll_ms": args.poll_ms,
        "switch_interval_s": sys.getswitchinterval(),
        "threads": args.threads,
        "runs": args.runs,
        "rounds": args.rounds,
        "receipts_verified": mlp["receipts_verified"],
        "modes": mlp["modes"],
        "mlp_plain_us": mlp["plain_us"],
        "started_utc": started,
        "load_avg_1m_start": load_start,
        "load_avg_1m_after_mlp": load_mlp,
        "cores": os.cpu_count(),
    }
    if not args.mlp_only:
        progress("CNN 1x28x28")
        cnn = measure_model("cnn", build_cnn(), (1, 1, 28, 28), args)
        print(f"CNN plain {cnn['plain_us']} µs; " + "; ".join(f"{m} {v}" for m, v in cnn["modes"].items()))
        progress("receipt keys")
        keys = measure_keys(args.runs)
        print(f"keys {keys}")
        progress("end to end through gateway + enclave server")
        e2e = measure_end_to_end(args.e2e_seconds, args.e2e_clients)
        print(f"end to end {e2e}")
        summary.update(cnn=cnn, keys=keys, e2e=e2e)
    summary["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    line = json.dumps(summary)
    if args.record:
        args.results.write_text(json.dumps(summary, indent=2) + "\n")
    print(line)


if __name__ == "__main__":
    main()
