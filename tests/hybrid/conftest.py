"""Published reference pipelines (split, tuned zk compile, dev image, signed manifest) for both
boundary visibilities, and one zk-mode run of each: built once per session, shared by every
end-to-end hybrid test module (the compile dominates their cost)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto_loopback import moto_loopback

from hybrid.hybrid_setup import Published, publish


@pytest.fixture(scope="session")
def private(tmp_path_factory: pytest.TempPathFactory) -> Published:
    return publish(tmp_path_factory.mktemp("private"), "private")


@pytest.fixture(scope="session")
def public(tmp_path_factory: pytest.TempPathFactory) -> Published:
    return publish(tmp_path_factory.mktemp("public"), "public")


@pytest.fixture(scope="session")
def private_run(private: Published) -> tuple[Path, Path]:
    return private.run("first", seed=1)


@pytest.fixture(scope="session")
def public_run(public: Published) -> tuple[Path, Path]:
    return public.run("first", seed=1)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One real moto server on loopback (SQS + S3) for the session; tests make their own queues."""
    with moto_loopback() as endpoint:
        yield endpoint
