"""A streamed completion sealed by each of ``trustdial serve``'s sealers (process, thread, and the event
loop's own: ``--sealer loop``), in process on one asyncio loop as the server runs it: every chunk and
the completion get a receipt that opens under the enclave's key, with the op, chunk index and order the
frames say. The loop sealer's pipeline is not thread-safe and seals on the loop only: the statements are
submitted there, and its deadline is armed after each one (no idle-signalling selector here, so nothing
else would seal them)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from trustdial_verifier._internal.receipts import open_receipt

from enclave_app.llm.service import LlmService, load_llm
from enclave_app.models import ModelRegistry
from enclave_app.nsm.selection import open_nsm
from enclave_app.receipts.ring import ring_supported
from enclave_app.service import EnclaveService
from llm.stack import TINY

SEALERS = ["loop", "thread", pytest.param("process", marks=pytest.mark.skipif(
    not ring_supported(), reason="the sealer process needs the x86-64 ring"))]  # fmt: skip


async def _stream(sealer: str) -> tuple[list[dict[str, Any]], bytes, bytes]:
    service = EnclaveService(
        ModelRegistry([]), open_nsm("simulated"), sealer=sealer, loop=asyncio.get_running_loop()
    )
    try:
        llm = LlmService([load_llm(f"tiny={TINY}", threads=1)], service.receipts, after_submit=service.seal_later)
        frames: list[dict[str, Any]] = []

        async def send(frame: dict[str, Any]) -> None:
            frames.append(frame)

        body = {"model": "tiny", "prompt": "Once upon", "max_tokens": 6, "temperature": 0, "stream": True}
        await asyncio.wait_for(llm.complete({"endpoint": "completions", "body": body, "nonce": b"n"}, send), 60)
        return frames, service.public_key, service.attestation_digest
    finally:
        service.close()


@pytest.mark.parametrize("sealer", SEALERS)
def test_every_sealer_seals_each_chunk_and_the_completion(sealer: str) -> None:
    frames, key, digest = asyncio.run(_stream(sealer))
    assert [f["event"] for f in frames] == ["start", *["chunk"] * (len(frames) - 2), "end"]
    seqs = []
    for frame in frames:
        statement = open_receipt(frame["receipt"], public_key=key, attestation_digest=digest).statement
        if frame["event"] == "end":
            assert statement.op == "llm-completion" and dict(statement.params)["chunks"] == frame["chunks"]
        else:
            assert statement.op == "llm-chunk" and dict(statement.params)["index"] == frame["index"]
        assert statement.nonce == b"n"
        seqs.append(statement.seq)
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
