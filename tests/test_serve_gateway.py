"""The shared serve+gateway launcher leaves no process behind when starting fails, and a started pair serves."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from serve_gateway import start_process, start_serve_and_gateway

from enclave_app.reference_models import build_mlp


def _processes_mentioning(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains ``marker``, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "mlp.onnx"
    path.write_bytes(build_mlp((4, 8, 2), seed=1))
    return path


@pytest.fixture
def pcrs(tmp_path: Path) -> Path:
    path = tmp_path / "pcrs.json"
    path.write_text('{"0": "' + "ab" * 48 + '"}')
    return path


def test_a_ready_line_that_is_not_json_stops_the_process(tmp_path: Path) -> None:
    marker = str(tmp_path / "not-json")
    script = "import sys, time; print('starting...', flush=True); time.sleep(120)"
    with pytest.raises(ValueError):
        start_process([sys.executable, "-c", script, marker])
    assert _processes_mentioning(marker) == []


def test_no_ready_line_within_the_limit_stops_the_process(tmp_path: Path) -> None:
    marker = str(tmp_path / "silent")
    with pytest.raises(TimeoutError):
        start_process([sys.executable, "-c", "import time; time.sleep(120)", marker], timeout=1)
    assert _processes_mentioning(marker) == []


def test_a_process_that_exits_at_once_is_reported_with_its_stderr(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="went wrong"):
        start_process([sys.executable, "-c", "import sys; sys.exit('went wrong')"])


def test_a_gateway_that_fails_to_start_takes_the_server_down_with_it(model: Path, pcrs: Path, tmp_path: Path) -> None:
    root_out = tmp_path / "root-of-a-failed-start.pem"
    with pytest.raises(RuntimeError, match="gateway did not start"):
        start_serve_and_gateway([model], pcrs, root_out, gateway_args=["--no-such-option"])
    assert root_out.exists()  # the server did start ...
    assert _processes_mentioning(str(root_out)) == []  # ... and is gone


def test_a_started_pair_serves_and_stop_ends_both(model: Path, pcrs: Path, tmp_path: Path) -> None:
    root_out = tmp_path / "root.pem"
    service = start_serve_and_gateway([f"tiny={model}"], pcrs, root_out)
    try:
        answer = httpx.get(f"{service.url}/v1/models", timeout=30)
    finally:
        service.stop()
    assert answer.status_code == 200
    assert "tiny" in answer.text
    assert root_out.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert all(process.returncode is not None for process in service.processes)
    assert _processes_mentioning(str(root_out)) == []
