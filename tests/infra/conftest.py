"""One synthesized trustdial app for the whole test session (jsii start-up and the first synth cost seconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from infra_testkit import TEST_CONFIG, SynthesizedApp, feature_flags


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
