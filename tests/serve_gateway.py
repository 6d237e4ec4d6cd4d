"""``trustdial serve`` (simulated NSM) and ``trustdial gateway`` as subprocesses on 127.0.0.1, for every area's
tests. Each command announces itself with one JSON line on stdout; whatever goes wrong while starting (no line,
a line that is not JSON, no line within the time limit, the second process failing), every process started so far
is stopped before the error propagates."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 120.0


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    stdout = process.stdout
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        raise TimeoutError(f"{process.args!r} printed no ready line within {timeout:.0f} s")
    return lines[0]


def stop_process(process: subprocess.Popen[str]) -> None:
    """Terminate (kill after 10 s), reap, and close the pipes; harmless on a process that already exited."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def start_process(args: Sequence[str | Path], timeout: float = START_TIMEOUT_S) -> tuple[subprocess.Popen[str], Any]:
    """Start a command that prints one JSON ready line; return the process and that parsed line."""
    command = [str(arg) for arg in args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = _first_line(process, timeout)
        if not line:
            status = process.wait(timeout=30)
            detail = process.stderr.read() if process.stderr else ""
            raise RuntimeError(f"{command[1]} did not start (exit status {status}): {detail}")
        return process, json.loads(line)
    except BaseException:
        stop_process(process)
        raise


@dataclass
class ServeAndGateway:
    url: str
    enclave_address: str
    root_pem: Path
    processes: list[subprocess.Popen[str]]

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_process(process)


def start_serve_and_gateway(
    models: Sequence[str | Path],
    pcrs_from: Path,
    root_out: Path,
    serve_args: Sequence[str] = (),
    gateway_args: Sequence[str] = (),
) -> ServeAndGateway:
    """``trustdial serve --model M ...`` with a simulated NSM reporting the PCRs in ``pcrs_from`` (a JSON file or an
    EIF) and writing its root certificate to ``root_out``, then ``trustdial gateway`` in front of it."""
    model_args = [arg for model in models for arg in ("--model", str(model))]
    server, ready = start_process(
        [
            BIN / "trustdial", "serve", *model_args, "--listen", "tcp:127.0.0.1:0", "--nsm", "simulated",
            "--simulated-pcrs-from", pcrs_from, "--simulated-root-out", root_out, *serve_args,
        ]
    )  # fmt: skip
    try:
        gateway, gateway_ready = start_process(
            [BIN / "trustdial", "gateway", "--enclave", ready["address"], "--listen", "127.0.0.1:0", *gateway_args]
        )
    except BaseException:
        stop_process(server)
        raise
    return ServeAndGateway(gateway_ready["url"], ready["address"], root_out, [server, gateway])
