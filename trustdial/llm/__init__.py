"""``trustdial llm``: model bundles for the enclave's LLM engine (onnxruntime-genai)."""
