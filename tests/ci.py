"""Whether the suite runs under CI (``CI`` set to 1/true/yes), where a test that cannot run is a failure: ``make test``
on a clean clone installs and builds everything the suite needs, so a missing prerequisite there is a bug."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip with ``reason`` on a developer's machine; fail with it under CI."""
    if under_ci():
        pytest.fail(f"CI=true, so this is a failure, not a skip: {reason}", pytrace=False)
    pytest.skip(reason)
