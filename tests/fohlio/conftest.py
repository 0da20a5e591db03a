from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Workspace


class FohlioWorkspace(Workspace):
    """A workspace whose DuckDB file is not named like the dataset: DuckDB cannot bind
    `billing.invoices` when both the catalog and the schema are called `billing`."""

    @property
    def db(self) -> Path:
        return self.path / "warehouse.duckdb"


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A clean working directory for one pipeline, with its own state and DuckDB file."""
    return FohlioWorkspace(tmp_path)
