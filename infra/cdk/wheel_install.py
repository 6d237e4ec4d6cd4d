"""Bash that installs trustdial on a host from the wheels the image build publishes under ``wheels/``, with the
repository's ``constraints.txt`` (published next to them) pinning every dependency."""

from __future__ import annotations

from enum import StrEnum

WHEELS_PREFIX = "wheels/"
HOST_VENV = "/opt/trustdial/venv"


class Role(StrEnum):
    """The extra of ``trustdial`` a machine installs (pyproject.toml): only what that machine runs."""

    HOST = "host"  # the enclave's parent instance: gateway, measurement checks
    PROVER = "prover"  # a prover-fleet worker: ezkl, S3/SQS


def wheel_install_snippet(bucket: str, role: Role) -> str:
    """Define ``install_trustdial``: copy the published wheels and install trustdial with ``role``'s extra (and
    nothing of the other roles: no CDK on a host, no ezkl on a host) into :data:`HOST_VENV`."""
    return f"""install_trustdial() {{
  mkdir -p /opt/trustdial/wheels
  aws s3 cp --recursive --only-show-errors "s3://{bucket}/{WHEELS_PREFIX}" /opt/trustdial/wheels/
  python3.11 -m venv {HOST_VENV}
  {HOST_VENV}/bin/pip install --quiet -c /opt/trustdial/wheels/constraints.txt \\
    --find-links /opt/trustdial/wheels 'trustdial[{role.value}]' trustdial-verifier
}}
"""
