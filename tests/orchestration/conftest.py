"""What the Dagster tests share: the throwaway PostgreSQL cluster of tests/postgres/ (the same
fixtures), and an environment that points the pipeline at a clean pipelines dir and DuckDB file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres.conftest import pg_cluster, pg_database
from tests.support import REPO, rates_env

__all__ = ["pg_cluster", "pg_database"]

_INHERITED_PREFIXES = (
    "SOURCES__",
    "DESTINATION__",
    "PROVIDERS",
    "PIPELINE_NAME",
    "DATASET_NAME",
    "DESTINATION_TYPE",
    "PIPELINES_DIR",
    "ACCOUNT_CONCURRENCY",
)


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process's environment without the developer's pipeline settings: its own pipelines dir
    and DuckDB file under `tmp_path`, no progress lines, the repository's `.dlt/` (telemetry off),
    the reference rates read without asking the ECB's site (`tests.support.rates_env`)."""
    for name in list(os.environ):
        if name.startswith(_INHERITED_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIPELINES_DIR", str(tmp_path / "pipelines"))
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("PROGRESS_INTERVAL", "0")
    for name, value in rates_env().items():  # the reference rates without the ECB's site
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(REPO)
    return tmp_path


@pytest.fixture(autouse=True)
def dagster_instance_forgotten() -> Iterator[None]:
    """Leave no closed Dagster instance behind: leaving `with DagsterInstance ...` keeps the
    instance's state storage as the current one (a context variable), and the next definitions
    to load in this process would reach into the closed instance."""
    try:
        from dagster._core.storage.defs_state import base
    except ImportError:
        yield
        return
    before = base._current_storage.get()
    yield
    base._current_storage.set(before)
