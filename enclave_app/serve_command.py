"""``trustdial serve``: the enclave server (see enclave_app.server)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trustdial_verifier.errors import InputError, VerificationError

from enclave_app.addresses import parse_address
from enclave_app.circuit_model import load_circuit_model
from enclave_app.frames import DEFAULT_MAX_FRAME
from enclave_app.llm.service import LlmService, load_llm
from enclave_app.loop_idle import IdleSignallingSelector, idle_signalling_loop
from enclave_app.models import LoadedModel, ModelRegistry, load_model
from enclave_app.nsm.device import NsmError
from enclave_app.nsm.selection import NSM_MODES, load_pcrs, open_nsm
from enclave_app.receipts.key import KEY_TYPES
from enclave_app.receipts.process_pipeline import ProcessReceiptPipeline
from enclave_app.receipts.ring import SealerProcessError
from enclave_app.sealed.serve_options import add_sealed_arguments, load_sealed_models
from enclave_app.server import EnclaveServer, ServerLimits
from enclave_app.service import INLINE_RUN_S, SEALERS, EnclaveService, default_sealer

#: onnxruntime intra-op threads (``--threads``; 0 = onnxruntime's default, one per core): one, so that a
#: run executes on the thread that asked for it and nothing spins against the gateway and the sealer
#: (docs/receipts.md §11)
DEFAULT_THREADS = 1
#: onnxruntime-genai intra-op threads of the language-model engines (``--llm-threads``): one, so that the
#: sealer process, the event loop and the host's traffic keep the other vCPU of a 2-vCPU enclave; on an enclave
#: with more dedicated vCPUs give it all but one (docs/performance.md, "LLM serving")
DEFAULT_LLM_THREADS = 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="run the attested inference server (inside the enclave)")
    parser.add_argument("--model", action="append", default=[], metavar="[NAME=]FILE.onnx", help="repeatable")
    add_sealed_arguments(parser)
    parser.add_argument(
        "--llm",
        action="append",
        default=[],
        metavar="[NAME=]BUNDLE_DIR",
        help="serve a language-model bundle (trustdial llm build) for /v1/chat/completions; repeatable",
    )
    parser.add_argument(
        "--circuit",
        action="append",
        default=[],
        metavar="NAME=ZKDIR",
        help="serve model NAME with its compiled zk circuit's semantics (tee+zk pipeline steps); repeatable",
    )
    parser.add_argument("--listen", required=True, help="vsock:PORT or tcp:HOST:PORT (port 0 = any)")
    parser.add_argument("--nsm", choices=NSM_MODES, default="auto")
    parser.add_argument("--simulated-pcrs-from", type=Path, help="JSON {index: hex} PCRs for the simulated NSM")
    parser.add_argument("--simulated-root-out", type=Path, help="write the simulated NSM's root certificate (PEM)")
    parser.add_argument("--receipt-key", choices=KEY_TYPES, default="p256", help="see docs/receipts.md §7")
    parser.add_argument(
        "--batch-size", type=int, default=64, help="max receipts sealed by one signature (1 = per request)"
    )
    parser.add_argument("--batch-wait-ms", type=float, default=2.0, help="latency budget before a batch is sealed")
    parser.add_argument("--max-frame", type=int, default=DEFAULT_MAX_FRAME)
    parser.add_argument("--stall-timeout", type=float, default=10.0)
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help="onnxruntime intra-op threads per run (0 = one per core); docs/receipts.md §11",
    )
    parser.add_argument(
        "--llm-threads",
        type=int,
        default=DEFAULT_LLM_THREADS,
        help="onnxruntime-genai intra-op threads of the --llm engines (0 = one per core; give all vCPUs but one); "
        "docs/performance.md, LLM serving",
    )
    parser.add_argument(
        "--spin",
        action="store_true",
        help="let onnxruntime's intra-op threads spin between runs and, for --llm, between the graph's parallel "
        "sections (only with --threads / --llm-threads > 1, on dedicated vCPUs)",
    )
    parser.add_argument(
        "--inline-run-ms",
        type=float,
        default=INLINE_RUN_S * 1000,
        help="run a model on the server's event loop if its run, timed at start, takes less than this (0 = always "
        "on a worker thread); docs/receipts.md §11",
    )
    parser.add_argument(
        "--sealer",
        choices=SEALERS,
        default=default_sealer(),
        help="seal receipts in a sealer process fed through shared memory (static-shape models bound to its "
        "slots), on the server's event loop once it runs out of work (loop), or in a thread of the server; "
        "docs/receipts.md §10-11",
    )
    parser.set_defaults(run=run)


async def _serve(args: argparse.Namespace, selector: IdleSignallingSelector | None = None) -> int:
    pcrs = load_pcrs(args.simulated_pcrs_from) if args.simulated_pcrs_from else None
    nsm = open_nsm(args.nsm, simulated_pcrs=pcrs)
    if args.simulated_root_out is not None:
        if not hasattr(nsm, "root_pem"):
            print("trustdial serve: --simulated-root-out needs the simulated NSM", file=sys.stderr)
            return 2
        args.simulated_root_out.write_bytes(nsm.root_pem)
    if not args.model and not args.sealed_model and not args.llm:
        print("trustdial serve: give at least one --model, --sealed-model or --llm", file=sys.stderr)
        return 2
    sealed = load_sealed_models(args, nsm, intra_op_threads=args.threads)
    registry = _registry(args.model, args.circuit, args.threads, sealed, spin=args.spin)
    if args.llm_threads < 0:
        print("trustdial serve: --llm-threads must be >= 0", file=sys.stderr)
        return 2
    llms = [load_llm(spec, threads=args.llm_threads, spinning=args.spin) for spec in args.llm]
    service = EnclaveService(
        registry, nsm, key_type=args.receipt_key, batch_size=args.batch_size, batch_wait=args.batch_wait_ms / 1000,
        sealer=args.sealer, loop=asyncio.get_running_loop(), inline_run_s=args.inline_run_ms / 1000,
    )  # fmt: skip
    if selector is not None and isinstance(service.receipts, ProcessReceiptPipeline):
        selector.on_block = service.receipts.writer_idle  # a lone response is sealed without lingering
    elif selector is not None and service.sealer == "loop":
        selector.on_block = service.loop_idle
    try:
        if llms:
            service.llm = LlmService(llms, service.receipts, after_submit=service.seal_later)
        server = EnclaveServer(service, ServerLimits(max_frame=args.max_frame, stall_timeout=args.stall_timeout))
        bound = await server.start(parse_address(args.listen))
        print(
            json.dumps(
                {
                    "event": "listening",
                    "address": str(bound),
                    "attestation_sha256": service.attestation_digest.hex(),
                    "models": {m["name"]: m["sha256"] for m in service.models()},
                    "llm": {m.name: m.digest.hex() for m in llms},
                }
            ),
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.close()
    finally:
        if selector is not None:
            selector.on_block = None
        service.close()  # stops the sealer process and unlinks its shared memory
    return 0


def _registry(
    model_specs: list[str],
    circuit_specs: list[str],
    threads: int,
    sealed: Sequence[LoadedModel] = (),
    *,
    spin: bool = False,
) -> ModelRegistry:
    """``--model [NAME=]FILE`` entries; those named by ``--circuit NAME=ZKDIR`` execute the circuit."""
    circuits: dict[str, Path] = {}
    for spec in circuit_specs:
        name, sep, directory = spec.partition("=")
        if not sep or not name or not directory:
            raise ValueError(f"expected --circuit NAME=ZKDIR, found {spec!r}")
        circuits[name] = Path(directory)
    models: list[LoadedModel] = list(sealed)
    for spec in model_specs:
        name, _, path = spec.rpartition("=")
        name = name or Path(path).stem
        if name in circuits:
            models.append(load_circuit_model(Path(path), circuits.pop(name), name))
        else:
            models.append(load_model(Path(path), name, intra_op_threads=threads, spinning=spin))
    if circuits:
        raise ValueError(f"--circuit names no --model: {sorted(circuits)}")
    return ModelRegistry(models)


def run(args: argparse.Namespace) -> int:
    try:
        loop, selector = idle_signalling_loop()
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            return runner.run(_serve(args, selector))
    except (OSError, ValueError, NsmError) as err:
        print(f"trustdial serve: {err}", file=sys.stderr)
        return 2
    except (InputError, VerificationError, SealerProcessError) as err:
        print(f"trustdial serve: [{err.code}] {err.reason}", file=sys.stderr)
        return 2
