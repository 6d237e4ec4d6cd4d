"""The TEE micro-loop diagnostics: where the receipt pipeline's per-response cost goes (README.md)."""
