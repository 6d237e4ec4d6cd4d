"""CDK app entry point: ``npx cdk synth`` from infra/ (see cdk.json), or ``python infra/app.py``.

Configuration comes from context: ``-c config=path.json``, ``-c deployment=NAME``, ``-c pcrs=path-or-json``
(see infra/cdk/config.py and the README's "Deploy to AWS"). Stacks are environment-agnostic unless
CDK_DEFAULT_ACCOUNT/CDK_DEFAULT_REGION are set by the CLI; no context lookups, no credentials needed to synth.
"""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk

from infra.cdk.config import load_config
from infra.cdk.errors import InfraConfigError
from infra.cdk.stacks import add_trustdial_stacks

CONTEXT_KEYS = ("config", "deployment", "pcrs")


def build_app(app: cdk.App) -> None:
    config = load_config({key: app.node.try_get_context(key) for key in CONTEXT_KEYS})
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if account and region else None
    add_trustdial_stacks(app, config, env=env)


def main() -> int:
    app = cdk.App()
    try:
        build_app(app)
    except InfraConfigError as error:
        print(f"trustdial infra: {error.code}: {error.reason}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
