"""The decoding loop over onnxruntime-genai, shared by the enclave and by ``trustdial-verify chat --replay``.

One :class:`Engine` per bundle (``og.Model`` + tokenizer); :meth:`Engine.prompt_ids` applies the bundle's chat
template and tokenizes; :meth:`Engine.steps` runs one ``og.Generator`` token by token with its KV cache, with
temperature (0 = greedy), top_p, top_k (0 = the whole vocabulary) and the seed, and yields one :class:`Step` per
generated token: its id, the text it releases and, on the last one, the finish reason.

Text is produced by the tokenizer's incremental stream. Stop sequences are found in the text: text that could be
the start of a stop sequence is held back until it cannot be; when one appears, the text before it is released and
generation ends (``stop``). The end-of-sequence token ends generation too (``stop``; its id is part of the
completion, its text is not); ``max_tokens`` tokens end it with ``length``. Needs ``onnxruntime-genai`` (the
``llm`` extra), imported when an engine is created.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from trustdial_verifier._internal.llm.request import Endpoint, RequestRecord, RequestRefused
from trustdial_verifier.errors import InputError


class FinishReason(StrEnum):
    STOP = "stop"
    LENGTH = "length"


@dataclass(frozen=True)
class Step:
    token_id: int
    text: str
    finish_reason: FinishReason | None


@dataclass(frozen=True)
class Completion:
    completion_ids: tuple[int, ...]
    text: str
    finish_reason: FinishReason


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of a stop sequence."""
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:n]):
                longest = n
                break
    return longest


class Engine:
    def __init__(self, directory: Path, *, threads: int = 0, spinning: bool = False) -> None:
        """``threads``: onnxruntime intra-op threads (0 = one per core). Unless ``spinning``, the pool's threads
        sleep between the graph's parallel sections instead of spinning (a spinning pool takes the cores the
        receipt sealer, the event loop and the host's traffic need; docs/performance.md, "LLM serving")."""
        try:
            import onnxruntime_genai as og
        except ImportError as err:
            raise InputError(
                "LLM_ENGINE_UNAVAILABLE",
                f"onnxruntime-genai cannot be imported ({err}); install the llm extra: trustdial-verifier[llm]",
            ) from None

        self._og = og
        try:
            config = og.Config(str(directory))
        except RuntimeError as err:  # onnxruntime-genai reports an unreadable genai_config.json so
            raise InputError("LLM_BUNDLE_UNLOADABLE", f"{directory}: {err}") from None
        options: dict[str, int | str] = {}
        if threads:
            options["intra_op_num_threads"] = threads
        if not spinning and threads != 1:  # one thread: no pool, nothing spins
            options["session.intra_op.allow_spinning"] = "0"  # a session config entry, passed through as is
        if options:
            config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
        try:
            self.model = og.Model(config)
            self.tokenizer = og.Tokenizer(self.model)
        except RuntimeError as err:  # a graph or tokenizer onnxruntime-genai cannot load
            raise InputError("LLM_BUNDLE_UNLOADABLE", f"{directory}: {err}") from None
        genai = json.loads((directory / "genai_config.json").read_text(encoding="utf-8"))["model"]
        self.context_length = int(genai["context_length"])
        self.vocab_size = int(genai["vocab_size"])
        eos = genai["eos_token_id"]
        self.eos_ids = frozenset(eos if isinstance(eos, list) else [eos])
        self._lock = threading.Lock()  # the tokenizer is shared; templating and encoding take turns

    def prompt_ids(self, record: RequestRecord | Any) -> list[int]:
        """Token ids of the prompt: the chat template applied to ``messages``, or the raw ``prompt``."""
        with self._lock:
            if record.endpoint is Endpoint.CHAT:
                messages = [{"role": role, "content": content} for role, content in record.messages or ()]
                text = self.tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True)
            else:
                text = record.prompt
            return [int(t) for t in self.tokenizer.encode(text)]

    def resolve_max_tokens(self, requested: int | None, prompt_len: int, default: int) -> int:
        """The caller's max_tokens if prompt + it fit the context, else a refusal; absent: ``default``, clipped."""
        room = self.context_length - prompt_len
        if room < 1:
            raise RequestRefused(
                "context_length_exceeded",
                f"the prompt is {prompt_len} tokens; this model's context is {self.context_length}",
                "messages",
            )
        if requested is None:
            return min(default, room)
        if requested > room:
            raise RequestRefused(
                "context_length_exceeded",
                f"prompt ({prompt_len} tokens) + max_tokens ({requested}) exceeds the context of {self.context_length}",
                "max_tokens",
            )
        return requested

    def steps(self, record: RequestRecord, prompt_ids: list[int]) -> Iterator[Step]:
        og = self._og
        params = og.GeneratorParams(self.model)
        options: dict[str, Any] = {"max_length": len(prompt_ids) + record.max_tokens, "batch_size": 1}
        if record.greedy:
            options["do_sample"] = False
        else:
            options.update(
                do_sample=True,
                temperature=record.temperature,
                top_p=record.top_p,
                top_k=record.top_k or self.vocab_size,
                random_seed=record.seed,
            )
        params.set_search_options(**options)
        generator = og.Generator(self.model, params)
        generator.append_tokens(prompt_ids)
        stream = self.tokenizer.create_stream()
        released = ""  # text given out so far
        pending = ""  # text decoded but held back (could start a stop sequence)
        count = 0
        while True:
            generator.generate_next_token()
            token = int(generator.get_next_tokens()[0])
            count += 1
            if token in self.eos_ids:
                yield Step(token, pending, FinishReason.STOP)
                return
            pending += stream.decode(token)
            if record.stop:
                window = released[-MAX_STOP_WINDOW:] + pending
                cut = min((i for i in (window.find(s) for s in record.stop) if i >= 0), default=-1)
                if cut >= 0:
                    start = len(window) - len(pending)
                    yield Step(token, window[start:cut] if cut > start else "", FinishReason.STOP)
                    return
            if count >= record.max_tokens or generator.is_done():
                yield Step(token, pending, FinishReason.LENGTH)
                return
            hold = _held_back(pending, record.stop) if record.stop else 0
            out = pending[: len(pending) - hold]
            pending = pending[len(pending) - hold :]
            released += out
            yield Step(token, out, None)

    def complete(self, record: RequestRecord, prompt_ids: list[int]) -> Completion:
        ids: list[int] = []
        text: list[str] = []
        finish = FinishReason.LENGTH
        for step in self.steps(record, prompt_ids):
            ids.append(step.token_id)
            text.append(step.text)
            if step.finish_reason is not None:
                finish = step.finish_reason
        return Completion(tuple(ids), "".join(text), finish)


#: released text that can still be part of a stop sequence: held-back text never reaches past it
MAX_STOP_WINDOW = 64
