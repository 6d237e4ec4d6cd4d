"""Values and helpers shared by the infra tests (values chosen independently of the code under test).

A module with a unique name, not conftest, so test modules never import another area's conftest by accident.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def label_pcr(label: str) -> str:
    """A well-formed PCR value independent of the code under test."""
    return hashlib.sha384(label.encode()).hexdigest()


CURRENT_PCRS = {"pcr0": label_pcr("test image A pcr0"), "pcr1": label_pcr("kernel A"), "pcr2": label_pcr("app A")}
NEXT_PCRS = {"pcr0": label_pcr("test image B pcr0"), "pcr1": label_pcr("kernel B"), "pcr2": label_pcr("app B")}
TEST_CONFIG: dict[str, Any] = {
    "deployment": "citest",
    "pcrs": [CURRENT_PCRS, NEXT_PCRS],
    "enclave_instance_type": "c6i.2xlarge",
    "enclave_hosts_min": 2,
    "enclave_hosts_max": 5,
    "gateway_port": 9443,
    "prover_instance_type": "r7i.4xlarge",
    "prover_max_instances": 7,
    "prover_backlog_per_instance": 3,
    "prover_job_timeout_minutes": 45,
    "measurement_retention_days": 400,
}


REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_DEPRECATED", "quiet")


def feature_flags() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((INFRA / "cdk.json").read_text())["context"]
    return context


@dataclass(frozen=True)
class SynthesizedApp:
    templates: dict[str, dict[str, Any]]  # stack role ("measurements", ...) -> CloudFormation template
    assertions: dict[str, Any]  # stack role -> aws_cdk.assertions.Template
    outdir: Path


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def only_resource(template: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    found = resources_of(template, resource_type)
    assert len(found) == 1, f"expected exactly one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def flatten_join(value: Any) -> str:
    """Render an Fn::Join/Fn::Base64 value to text, intrinsic parts as <Ref ...> placeholders."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Base64" in value:
        return flatten_join(value["Fn::Base64"])
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(flatten_join(part) for part in parts)
    return f"<{json.dumps(value, sort_keys=True)}>"
