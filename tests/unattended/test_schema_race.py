"""A load that loses a schema race to another load into the same dataset is loaded again
(pipelines/retry.py): the pending package lands once, nothing is doubled; any other schema
failure is raised at once. The race is Postgres's (two accounts creating the same tables at
once, tests/orchestration/test_postgres.py); here the destination's schema update fails the way
dlt reports it, on a real DuckDB file."""

from __future__ import annotations

import logging
from pathlib import Path

import dlt
import duckdb
import pytest
from dlt.common.destination.exceptions import DestinationTerminalException, DestinationTransientException
from dlt.destinations.impl.duckdb.duck import DuckDbClient

from pipelines import retry
from pipelines.retry import loading, schema_race


def _pipeline(tmp_path: Path) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name="race",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "race.duckdb")),
        dataset_name="billing",
    )


def _failing_schema_updates(monkeypatch: pytest.MonkeyPatch, error: Exception, times: int) -> list[int]:
    calls: list[int] = []
    update = DuckDbClient.update_stored_schema

    def racing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) <= times:
            raise error
        return update(self, *args, **kwargs)

    monkeypatch.setattr(DuckDbClient, "update_stored_schema", racing)
    return calls


def _rows(tmp_path: Path) -> list[tuple[int, str]]:
    with duckdb.connect(str(tmp_path / "race.duckdb"), read_only=True) as con:
        return con.execute("SELECT id, name FROM billing.things ORDER BY id").fetchall()


def test_a_lost_schema_race_is_loaded_again_and_lands_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(retry, "FIRST_PAUSE", 0.01)
    calls = _failing_schema_updates(monkeypatch, DestinationTransientException("deadlock detected"), times=2)
    pipeline = _pipeline(tmp_path)
    rows = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    with caplog.at_level(logging.WARNING, logger="billing.run"):
        loading(pipeline, lambda: pipeline.run(rows, table_name="things"), "acme")
    assert len(calls) == 3
    assert _rows(tmp_path) == [(1, "a"), (2, "b")]
    assert not pipeline.has_pending_data
    waits = [r.getMessage() for r in caplog.records if "changing the warehouse's tables" in r.getMessage()]
    assert len(waits) == 2 and waits[0].startswith("acme: ")


def test_a_schema_failure_that_is_not_a_race_is_raised_at_once(tmp_path, monkeypatch):
    calls = _failing_schema_updates(monkeypatch, DestinationTerminalException("permission denied"), times=1)
    pipeline = _pipeline(tmp_path)
    with pytest.raises(Exception) as raised:
        loading(pipeline, lambda: pipeline.run([{"id": 1, "name": "a"}], table_name="things"), "acme")
    assert not schema_race(raised.value)
    assert len(calls) == 1


def test_a_race_lost_every_time_gives_up_with_the_error(tmp_path, monkeypatch):
    monkeypatch.setattr(retry, "FIRST_PAUSE", 0.01)
    calls = _failing_schema_updates(monkeypatch, DestinationTransientException("deadlock detected"), times=99)
    pipeline = _pipeline(tmp_path)
    with pytest.raises(Exception) as raised:
        loading(pipeline, lambda: pipeline.run([{"id": 1, "name": "a"}], table_name="things"), "acme")
    assert schema_race(raised.value)
    assert len(calls) == retry.ATTEMPTS
    assert pipeline.has_pending_data  # kept for the next run, which loads it first
