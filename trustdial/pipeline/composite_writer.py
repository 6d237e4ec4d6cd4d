"""Assemble a composite receipt (docs/composite-receipts.md) from the results of each step."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from trustdial_verifier.unstable.composite import (
    RECEIPT_FORMAT,
    VISIBILITY_PUBLIC,
    PipelinePolicy,
    canonical_policy,
    derive_step_nonce,
    policy_sha256,
)


@dataclass(frozen=True)
class TensorCommitments:
    sha256: str | None = None
    poseidon: str | None = None

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in (("sha256", self.sha256), ("poseidon", self.poseidon)) if v is not None}


@dataclass(frozen=True)
class StepRecord:
    segment: str
    mode: str
    inputs: Mapping[str, TensorCommitments]
    outputs: Mapping[str, TensorCommitments]
    evidence: Mapping[str, Mapping[str, Any]]
    cost: Mapping[str, Any] = field(default_factory=dict)


def step_nonce(policy: PipelinePolicy, request_nonce: str, index: int) -> str:
    return derive_step_nonce(request_nonce, policy_sha256(policy), index, policy.segments[index].name)


def tensor_json(values: np.ndarray) -> dict[str, Any]:
    array = np.ascontiguousarray(values)
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": base64.b64encode(little.tobytes()).decode()}


def build_composite(
    policy: PipelinePolicy,
    *,
    request_nonce: str,
    manifest_sha256: str,
    tensors: Mapping[str, tuple[TensorCommitments, np.ndarray | None]],
    steps: list[StepRecord],
) -> dict[str, Any]:
    """The receipt document; ``tensors`` maps every policy tensor to its commitments and its values
    (values are written only for public tensors)."""
    boundary: dict[str, Any] = {}
    for name, visibility in policy.visibility.items():
        commitments, values = tensors[name]
        public = visibility == VISIBILITY_PUBLIC
        if public and values is None:
            raise ValueError(f"public tensor {name!r} needs its values in the receipt")
        boundary[name] = {
            "visibility": visibility,
            "commitment": commitments.to_json(),
            "tensor": tensor_json(values) if public and values is not None else None,
        }
    return {
        "format": RECEIPT_FORMAT,
        "pipeline": policy.name,
        "policy_sha256": policy_sha256(policy),
        "policy": canonical_policy(policy),
        "manifest_sha256": manifest_sha256,
        "request": {"nonce": request_nonce},
        "tensors": boundary,
        "steps": [
            {
                "index": index,
                "segment": record.segment,
                "mode": record.mode,
                "step_nonce": step_nonce(policy, request_nonce, index),
                "inputs": {k: v.to_json() for k, v in record.inputs.items()},
                "outputs": {k: v.to_json() for k, v in record.outputs.items()},
                "evidence": {k: dict(v) for k, v in record.evidence.items()},
                "cost": dict(record.cost),
            }
            for index, record in enumerate(steps)
        ],
    }


def dump_composite(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, indent=1, sort_keys=False) + "\n").encode()
