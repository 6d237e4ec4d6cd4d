"""One synthesized trustdial app for the whole test session (jsii start-up and the first synth cost seconds)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from infra_test_values import TEST_CONFIG

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


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynthesizedApp]:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.cdk.config import DeploymentConfig, config_from_mapping
    from infra.cdk.stacks import add_trustdial_stacks

    outdir = tmp_path_factory.mktemp("cdk-out")
    app = cdk.App(outdir=str(outdir), context=feature_flags())
    config = DeploymentConfig(**config_from_mapping(TEST_CONFIG, "test config"))
    stacks = add_trustdial_stacks(app, config)
    app.synth()
    roles = {
        "measurements": stacks.measurements,
        "network": stacks.network,
        "enclave_hosts": stacks.enclave_hosts,
        "prover_fleet": stacks.prover_fleet,
        "image_build": stacks.image_build,
    }
    assertions = {role: Template.from_stack(stack) for role, stack in roles.items()}
    templates = {role: assertion.to_json() for role, assertion in assertions.items()}
    yield SynthesizedApp(templates=templates, assertions=assertions, outdir=outdir)


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
