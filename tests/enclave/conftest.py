"""Fixtures for the enclave area: reference models on disk and a live service (see live_service)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from enclave.live_service import LiveService, ModelFiles, start_service, stop_service, write_models


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> ModelFiles:
    return write_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def live(model_files: ModelFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    service = start_service(model_files, tmp_path_factory.mktemp("live"))
    try:
        yield service
    finally:
        stop_service(service)
