"""The published reference pipelines (``private``, ``public``) and their first runs
(``private_run``, ``public_run``) are session fixtures in tests/conftest.py, shared with the red
team's composite attacks so that each pipeline is compiled once per session."""
