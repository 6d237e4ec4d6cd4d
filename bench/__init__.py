"""Benchmarks: each script answers one question against a baseline measured in the same process
(docs/performance.md). Run top-level ones as ``python bench/NAME.py``, the TEE micro-loop
diagnostics as ``python -m bench.tee_microloop.NAME`` from the repository root."""
