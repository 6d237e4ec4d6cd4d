"""What one piece of step evidence proved (:class:`VerifiedEvidence`): produced only by the evidence checkers
(``evidence_tee``, ``evidence_zk``) after signatures and proofs verified; the composite checks trust nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from trustdial_verifier._internal.composite.receipt import Commitment


@dataclass(frozen=True)
class VerifiedEvidence:
    """What one piece of step evidence proved, after its signature or proof verified."""

    kind: str  # "tee" | "zk"
    inputs: Mapping[str, Commitment]
    outputs: Mapping[str, Commitment]
    model_sha256: str | None = None  # tee: the model file the enclave ran
    vk_sha256: str | None = None  # zk: the verifying key the proof verified under
    nonce: str | None = None  # tee: the request nonce the enclave signed
    issued_at_ms: int | None = None  # tee: enclave timestamp of the receipt
    attested_at_ms: int | None = None  # tee: timestamp of the attestation document binding the key
    executed_circuit_sha256: str | None = None  # tee: the compiled ezkl circuit the enclave executed, if it signed one
    # tensor -> the ezkl scale its Poseidon commitment quantized at (zk: the pinned settings; tee: the signed
    # poseidon_scale). Equal Poseidon hashes are equal felts; only at equal scales are they equal values.
    poseidon_scales: Mapping[str, int] = field(default_factory=dict)
    prover: str = ""  # who vouches: receipt key + enclave PCR0, or the vk
    evidence_bytes: int = 0
