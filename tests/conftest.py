"""Session-wide test settings shared by every area's tests."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import settings

DATA_DIR = Path(__file__).parent / "data"

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
