"""``trustdial serve --llm-threads``: the LLM engines' own thread setting, refused when negative before anything
is loaded (exit 2 and a message naming the option), accepted beside ``--threads`` and ``--spin``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from serve_gateway import BIN, start_process, stop_process

from llm.stack import TINY


def test_negative_llm_threads_is_refused() -> None:
    done = subprocess.run(
        [BIN / "trustdial", "serve", "--llm", f"tiny={TINY}", "--llm-threads", "-1", "--listen", "tcp:127.0.0.1:0",
         "--nsm", "simulated"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--llm-threads must be >= 0" in done.stderr


def test_llm_threads_two_with_spin_serves(tmp_path: Path) -> None:
    (tmp_path / "pcrs.json").write_text(json.dumps({"0": "c0" * 48}))
    server, ready = start_process(
        [BIN / "trustdial", "serve", "--llm", f"tiny={TINY}", "--llm-threads", "2", "--threads", "1", "--spin",
         "--listen", "tcp:127.0.0.1:0", "--nsm", "simulated", "--simulated-pcrs-from", tmp_path / "pcrs.json"]
    )  # fmt: skip
    try:
        assert set(ready["llm"]) == {"tiny"}
    finally:
        stop_process(server)


def test_serve_llm_without_the_engine_is_a_coded_refusal(tmp_path: Path) -> None:
    """An image or venv lacking onnxruntime-genai: serve --llm exits 2 with a code, not a traceback."""
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "onnxruntime_genai.py").write_text('raise ImportError("onnxruntime_genai hidden by the test")\n')
    env = {**os.environ, "PYTHONPATH": f"{blocked}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [BIN / "trustdial", "serve", "--llm", f"tiny={TINY}", "--listen", "tcp:127.0.0.1:0", "--nsm", "simulated"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "[LLM_ENGINE_UNAVAILABLE]" in done.stderr and "Traceback" not in done.stderr, done.stderr
