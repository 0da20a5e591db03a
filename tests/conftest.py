from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A clean working directory for one pipeline, with its own state and DuckDB file."""
    return Workspace(tmp_path)
