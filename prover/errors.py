"""Failures of the prover side (compile, prove, worker), with stable codes like the verifier's."""

from __future__ import annotations


class ProverError(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
