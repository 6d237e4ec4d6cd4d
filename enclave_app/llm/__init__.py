"""Language-model completions inside the enclave (onnxruntime-genai bundles, streamed, with receipts)."""
