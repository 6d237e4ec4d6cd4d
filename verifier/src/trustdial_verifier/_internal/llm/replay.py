"""``--replay BUNDLE``: run a verified completion again, locally, and require the same tokens.

The bundle is checked file by file against its manifest and its digest must be the one the receipt names; the
engine (:mod:`trustdial_verifier._internal.llm.engine`, the same decoding loop the enclave runs) templates the
recorded request, which
must give the recorded prompt ids, then decodes with the recorded seed and settings. The completion ids, the text
and the finish reason must all be equal. Needs the ``llm`` extra (onnxruntime-genai).
"""

from __future__ import annotations

from pathlib import Path

from trustdial_verifier._internal.llm.bundle import verify_bundle
from trustdial_verifier._internal.llm.engine import Engine
from trustdial_verifier._internal.llm.verify import CompletionError, VerifiedCompletion


def replay(bundle: Path, verified: VerifiedCompletion) -> None:
    digest = verify_bundle(bundle).digest()
    if digest != verified.bundle_digest:
        raise CompletionError(
            "LLM_REPLAY_BUNDLE", f"the receipt names bundle {verified.bundle_digest.hex()}, {bundle} is {digest.hex()}"
        )
    engine = Engine(bundle)
    prompt_ids = engine.prompt_ids(verified.record)
    if tuple(prompt_ids) != verified.prompt_ids:
        raise CompletionError("LLM_REPLAY_PROMPT", "templating the recorded request gives other prompt ids")
    again = engine.complete(verified.record, prompt_ids)
    if again.completion_ids != verified.completion_ids:
        first = next(
            (i for i, (a, b) in enumerate(zip(again.completion_ids, verified.completion_ids, strict=False)) if a != b),
            min(len(again.completion_ids), len(verified.completion_ids)),
        )
        raise CompletionError("LLM_REPLAY_TOKENS", f"the replay's tokens differ from token {first} on")
    if again.text != verified.text or again.finish_reason.value != verified.finish_reason:
        raise CompletionError("LLM_REPLAY_TEXT", "the replay's text or finish reason differs")
