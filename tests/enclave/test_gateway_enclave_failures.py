"""The gateway reports an unreachable or silent enclave with stable codes instead of hanging."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serve_gateway import start_process, stop_process

BIN = Path(sys.executable).parent


def _gateway(enclave: str) -> tuple[subprocess.Popen[str], str]:
    process, ready = start_process(
        [str(BIN / "trustdial"), "gateway", "--enclave", enclave, "--listen", "127.0.0.1:0", "--enclave-timeout", "1"]
    )
    return process, ready["url"]


@pytest.fixture
def silent_enclave() -> Iterator[str]:
    """A TCP listener that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    try:
        yield f"tcp:127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def test_unreachable_enclave_is_503() -> None:
    unused = socket.create_server(("127.0.0.1", 0))
    port = unused.getsockname()[1]
    unused.close()
    process, url = _gateway(f"tcp:127.0.0.1:{port}")
    try:
        response = httpx.get(f"{url}/v1/models", timeout=30)
    finally:
        stop_process(process)
    assert (response.status_code, response.json()["error"]["code"]) == (503, "ENCLAVE_UNAVAILABLE")


def test_silent_enclave_is_504_after_the_timeout(silent_enclave: str) -> None:
    process, url = _gateway(silent_enclave)
    try:
        response = httpx.get(f"{url}/v1/models", timeout=30)
    finally:
        stop_process(process)
    assert (response.status_code, response.json()["error"]["code"]) == (504, "ENCLAVE_TIMEOUT")
