"""``trustdial serve --llm-threads``: the LLM engines' own thread setting, refused when negative before anything
is loaded (exit 2 and a message naming the option), accepted beside ``--threads`` and ``--spin``."""

from __future__ import annotations

import json
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
