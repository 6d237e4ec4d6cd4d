"""Session-wide test settings shared by every area's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_loopback
import pytest
from hypothesis import settings

DATA_DIR = Path(__file__).parent / "data"

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


# --- AWS on loopback (see aws_loopback): one moto server for the session, shared by every area ---


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """Endpoint URL of the session's moto server on 127.0.0.1; the environment is left alone."""
    with aws_loopback.moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def moto_endpoint(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's moto server, with the test credentials in the environment for this test (no reset: the
    test names its resources uniquely)."""
    for name, value in aws_loopback.AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    return moto_server


@pytest.fixture
def aws(moto_endpoint: str) -> dict[str, Any]:
    """A freshly reset moto server and boto3 clients for it: endpoint, s3 (path-style), ssm, kms."""
    aws_loopback.reset_moto(moto_endpoint)
    clients = {service: aws_loopback.aws_client(service, moto_endpoint) for service in ("s3", "ssm", "kms")}
    return {"endpoint": moto_endpoint, **clients}
