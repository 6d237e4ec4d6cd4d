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
def moto_endpoint() -> Iterator[str]:
    """Endpoint URL of the session's moto server on 127.0.0.1. While it runs, the environment holds the fake
    test credentials (restored afterwards), so boto3 clients and subprocesses never look for real ones. No reset:
    a test names its resources uniquely or asks for ``aws``."""
    saved = {name: os.environ.get(name) for name in aws_loopback.AWS_TEST_ENV}
    os.environ.update(aws_loopback.AWS_TEST_ENV)
    try:
        with aws_loopback.moto_server() as endpoint:
            yield endpoint
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def aws(moto_endpoint: str) -> dict[str, Any]:
    """A freshly reset moto server and boto3 clients for it: endpoint, s3 (path-style), ssm, kms."""
    aws_loopback.reset_moto(moto_endpoint)
    clients = {service: aws_loopback.aws_client(service, moto_endpoint) for service in ("s3", "ssm", "kms")}
    return {"endpoint": moto_endpoint, **clients}


# --- published hybrid pipelines (tests/hybrid/hybrid_setup.py): built once per session, shared by the hybrid
# end-to-end tests and the red team's composite attacks (split + zk compile dominates their cost) ---


@pytest.fixture(scope="session")
def private(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The reference pipeline with a private embedding boundary, published (``hybrid_setup.Published``)."""
    from hybrid.hybrid_setup import publish

    return publish(tmp_path_factory.mktemp("private"), "private")


@pytest.fixture(scope="session")
def public(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The reference pipeline with a public embedding boundary, published (``hybrid_setup.Published``)."""
    from hybrid.hybrid_setup import publish

    return publish(tmp_path_factory.mktemp("public"), "public")


#: the request nonce ``private_run`` sends (what a verifier passes as ``--nonce``)
PRIVATE_RUN_NONCE = "5e" * 32


@pytest.fixture(scope="session")
def private_run_nonce() -> str:
    """``PRIVATE_RUN_NONCE`` for tests in other directories: ``from conftest import`` would find whichever
    ``conftest`` module pytest imported first (tests/prover/ has one too)."""
    return PRIVATE_RUN_NONCE


@pytest.fixture(scope="session")
def private_run(private: Any) -> tuple[Path, Path]:
    """One zk-mode inference of ``private`` sent with ``PRIVATE_RUN_NONCE``: (composite receipt,
    simulated NSM root PEM)."""
    run: tuple[Path, Path] = private.run("first", seed=1, nonce=PRIVATE_RUN_NONCE)
    return run


@pytest.fixture(scope="session")
def public_run(public: Any) -> tuple[Path, Path]:
    """One zk-mode inference of ``public``: (composite receipt, simulated NSM root PEM)."""
    run: tuple[Path, Path] = public.run("first", seed=1)
    return run
