"""Published reference pipelines (split, tuned zk compile, dev image, signed manifest) for both
boundary visibilities, and one zk-mode run of each: built once per session, shared by every
end-to-end hybrid test module (the compile dominates their cost)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
