"""Completions decoded on the server's event loop take turns with everything else on it: two streams started
together interleave token by token and each gets the tokens plain onnxruntime gives for its prompt (an
independent greedy loop over the same graph, no KV cache, no onnxruntime-genai); a stream whose peer goes away
stops there and the service goes on serving; every frame goes out with a receipt that opens under the key."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from trustdial_verifier._internal.receipts import open_receipt

from enclave_app.llm.service import LlmService, load_llm
from enclave_app.models import ModelRegistry
from enclave_app.nsm.selection import open_nsm
from enclave_app.service import EnclaveService
from llm.stack import TINY
from llm.test_engine import REFERENCE, _plain_onnxruntime_greedy

TOKENS = 12


def _body(chat: dict[str, Any]) -> dict[str, Any]:
    return {"model": "tiny", "messages": chat["messages"], "max_tokens": TOKENS, "temperature": 0, "stream": True}


async def _two_streams() -> tuple[list[tuple[int, dict[str, Any]]], bytes, bytes]:
    service = EnclaveService(ModelRegistry([]), open_nsm("simulated"), sealer="loop", loop=asyncio.get_running_loop())
    try:
        llm = LlmService([load_llm(f"tiny={TINY}", threads=1)], service.receipts, after_submit=service.seal_later)
        sent: list[tuple[int, dict[str, Any]]] = []

        def sender(which: int) -> Any:
            async def send(frame: dict[str, Any]) -> None:
                sent.append((which, frame))

            return send

        await asyncio.wait_for(
            asyncio.gather(
                *(
                    llm.complete(
                        {"endpoint": "chat.completions", "body": _body(chat), "nonce": bytes([which])}, sender(which)
                    )
                    for which, chat in enumerate(REFERENCE["chats"])
                )
            ),
            60,
        )
        return sent, service.public_key, service.attestation_digest
    finally:
        service.close()


def test_two_streams_interleave_and_each_gets_its_own_greedy_tokens() -> None:
    sent, key, digest = asyncio.run(_two_streams())
    order = [which for which, _ in sent]
    first_end = next(i for i, (_, frame) in enumerate(sent) if frame["event"] == "end")
    assert set(order[:first_end]) == {0, 1}, "the second stream produced nothing until the first had ended"
    for which, chat in enumerate(REFERENCE["chats"]):
        frames = [frame for w, frame in sent if w == which]
        assert [f["event"] for f in frames] == ["start", *["chunk"] * TOKENS, "end"]
        expected = _plain_onnxruntime_greedy(TINY, chat["prompt_ids"], TOKENS)
        assert [f["token_ids"][0] for f in frames[1:-1]] == expected
        assert frames[-1]["completion_ids"] == expected
        for frame in frames:
            statement = open_receipt(frame["receipt"], public_key=key, attestation_digest=digest).statement
            assert statement.nonce == bytes([which])


async def _peer_gone_then_serve() -> tuple[int, list[dict[str, Any]]]:
    service = EnclaveService(ModelRegistry([]), open_nsm("simulated"), sealer="thread", loop=asyncio.get_running_loop())
    try:
        llm = LlmService(
            [load_llm(f"tiny={TINY}", threads=1)], service.receipts, after_submit=service.seal_later, max_concurrent=1
        )
        gone: list[dict[str, Any]] = []

        async def going(frame: dict[str, Any]) -> None:
            if len(gone) == 3:
                raise ConnectionError("the peer closed the connection")
            gone.append(frame)

        with pytest.raises(ConnectionError):
            await asyncio.wait_for(
                llm.complete({"endpoint": "chat.completions", "body": _body(REFERENCE["chats"][0])}, going), 60
            )
        frames: list[dict[str, Any]] = []

        async def send(frame: dict[str, Any]) -> None:
            frames.append(frame)

        # the one slot (max_concurrent=1) is free again: this would wait forever otherwise
        await asyncio.wait_for(
            llm.complete({"endpoint": "chat.completions", "body": _body(REFERENCE["chats"][1])}, send), 60
        )
        return len(gone), frames
    finally:
        service.close()


def test_a_stream_whose_peer_goes_away_stops_and_the_service_keeps_serving() -> None:
    delivered, frames = asyncio.run(_peer_gone_then_serve())
    assert delivered == 3
    assert [f["event"] for f in frames] == ["start", *["chunk"] * TOKENS, "end"]
    assert frames[-1]["completion_ids"] == _plain_onnxruntime_greedy(TINY, REFERENCE["chats"][1]["prompt_ids"], TOKENS)
