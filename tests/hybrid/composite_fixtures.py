"""Builds a consistent composite receipt at the level of *verified facts*: the receipt document
plus, per step, what its evidence proved. Used by the link/policy tests, where each attack
edits this consistent picture the way an attacker could and expects one specific code."""

from __future__ import annotations

import base64
import copy
import hashlib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from trustdial_verifier._internal.composite.evidence import VerifiedEvidence
from trustdial_verifier._internal.composite.manifest_facts import ManifestFacts, SegmentMeasurement
from trustdial_verifier._internal.composite.nonce import derive_step_nonce
from trustdial_verifier._internal.composite.policy import PipelinePolicy, canonical_policy, parse_policy, policy_sha256
from trustdial_verifier._internal.composite.receipt import Commitment, TensorData
from trustdial_verifier._internal.composite.tensor_commitment import tensor_sha256

ATTESTED_AT_MS = 1_795_000_000_000


def h(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def policy_text(modes: tuple[str, ...] = ("tee", "zk"), boundary: str = "private") -> str:
    names = ["input", "embedding", "decision", "extra"]
    segments = ["body", "head", "tail"]
    text = 'format = "trustdial.pipeline/1"\nname = "reference-decision"\n'
    for i, mode in enumerate(modes):
        text += (
            f'[[segments]]\nname = "{segments[i]}"\ninputs = ["{names[i]}"]\noutputs = ["{names[i + 1]}"]\n'
            f'mode = "{mode}"\nreason = "because {i}"\n'
        )
    text += "[tensors]\n"
    for i in range(len(modes) + 1):
        visibility = "private" if i == 0 else "public" if i == len(modes) else boundary
        text += f'{names[i]} = "{visibility}"\n'
    return text


def _tensor(seed: int, shape: tuple[int, ...]) -> TensorData:
    values = np.random.default_rng(seed).random(shape, dtype=np.float32)
    return TensorData(dtype="float32", shape=shape, data=values.astype("<f4").tobytes())


@dataclass
class Scenario:
    policy: PipelinePolicy
    manifest: ManifestFacts
    document: dict[str, Any]
    facts: list[dict[str, VerifiedEvidence]]

    def copy(self) -> Scenario:
        return Scenario(self.policy, self.manifest, copy.deepcopy(self.document), [dict(f) for f in self.facts])

    def edit_fact(self, step: int, kind: str, **changes: Any) -> None:
        self.facts[step][kind] = replace(self.facts[step][kind], **changes)


def build(modes: tuple[str, ...] = ("tee", "zk"), boundary: str = "private", nonce: str | None = None) -> Scenario:
    policy = parse_policy(policy_text(modes, boundary).encode())
    phash = policy_sha256(policy)
    request_nonce = nonce or h("request-1")
    tensors: dict[str, Any] = {}
    commitments: dict[str, Commitment] = {}
    for index, name in enumerate(policy.visibility):
        visibility = policy.visibility[name]
        if visibility == "public":
            data = _tensor(index, (1, 4))
            commitment = Commitment(sha256=tensor_sha256(name, data))
            record = {"dtype": data.dtype, "shape": list(data.shape), "data": base64.b64encode(data.data).decode()}
        else:
            commitment = Commitment(sha256=h(f"sha:{name}"), poseidon=h(f"poseidon:{name}"))
            record = None
        commitments[name] = commitment
        tensors[name] = {
            "visibility": visibility,
            "commitment": {k: v for k, v in vars(commitment).items() if v is not None},
            "tensor": record,
        }
    segments: dict[str, SegmentMeasurement] = {}
    steps: list[dict[str, Any]] = []
    facts: list[dict[str, VerifiedEvidence]] = []
    for index, segment in enumerate(policy.segments):
        segments[segment.name] = SegmentMeasurement(
            model_sha256=h(f"model:{segment.name}"),
            vk_sha256=h(f"vk:{segment.name}"),
            zk_pins={"compiled_circuit": h(f"circuit:{segment.name}")},
        )
        step_nonce = derive_step_nonce(request_nonce, phash, index, segment.name)
        kinds = {"tee": ["tee"], "zk": ["zk"], "tee+zk": ["tee", "zk"]}[segment.mode]
        step_facts: dict[str, VerifiedEvidence] = {}
        for kind in kinds:
            ins = {t: _as_kind(commitments[t], kind, policy.visibility[t]) for t in segment.inputs}
            outs = {t: _as_kind(commitments[t], kind, policy.visibility[t]) for t in segment.outputs}
            step_facts[kind] = VerifiedEvidence(
                kind=kind,
                inputs=ins,
                outputs=outs,
                model_sha256=h(f"model:{segment.name}") if kind == "tee" else None,
                vk_sha256=h(f"vk:{segment.name}") if kind == "zk" else None,
                nonce=step_nonce if kind == "tee" else None,
                issued_at_ms=ATTESTED_AT_MS + 1000 * (index + 1) if kind == "tee" else None,
                attested_at_ms=ATTESTED_AT_MS if kind == "tee" else None,
                executed_circuit_sha256=h(f"circuit:{segment.name}")
                if segment.mode == "tee+zk" and kind == "tee"
                else None,
                poseidon_scales={t: 7 for t in (*segment.inputs, *segment.outputs)},
                prover=f"{kind} prover",
                evidence_bytes=100,
            )
        facts.append(step_facts)
        stated = step_facts[kinds[0]]
        steps.append(
            {
                "index": index,
                "segment": segment.name,
                "mode": segment.mode,
                "step_nonce": step_nonce,
                "inputs": {t: _plain(c) for t, c in stated.inputs.items()},
                "outputs": {t: _plain(c) for t, c in stated.outputs.items()},
                "evidence": {kind: {"opaque": kind} for kind in kinds},
                "cost": {"seconds": 0.5},
            }
        )
    document = {
        "format": "trustdial.composite-receipt/1",
        "pipeline": policy.name,
        "policy_sha256": phash,
        "policy": canonical_policy(policy),
        "manifest_sha256": h("manifest"),
        "request": {"nonce": request_nonce},
        "tensors": tensors,
        "steps": steps,
    }
    manifest = ManifestFacts(sha256=h("manifest"), segments=segments)
    return Scenario(policy=policy, manifest=manifest, document=document, facts=facts)


def _as_kind(commitment: Commitment, kind: str, visibility: str) -> Commitment:
    """A TEE receipt signs SHA-256 (and Poseidon for private tensors); a proof exposes the Poseidon
    hash of a private tensor, or felts of a public one (reported as the SHA-256 of the bytes checked)."""
    if visibility == "public":
        return Commitment(sha256=commitment.sha256)
    if kind == "zk":
        return Commitment(poseidon=commitment.poseidon)
    return commitment


def _plain(commitment: Commitment) -> dict[str, str]:
    return {k: v for k, v in vars(commitment).items() if v is not None}
