"""DuckDB and Postgres hold the same canonical rows for the same upstream data: every column of
the three tables, for all four providers."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipelines.views import VIEW_NAMES
from tests.postgres.cluster import Database
from tests.postgres.support import DATASET, TABLES, duckdb_columns, duckdb_rows, every_sandbox, pg_columns, pg_rows
from tests.support import Workspace

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

# Flow Payroll pre-signs attachment links on every read (sandbox/flowpayroll/app.py): the only
# upstream values that differ between the two runs.
SIGNED_ON_EVERY_READ = ("downloadUrl", "downloadUrlExpiresAt")


def without_signed_links(row: dict[str, Any]) -> dict[str, Any]:
    raw = row.get("raw")
    if row["provider"] != "flowpayroll" or not isinstance(raw, dict):
        return row
    return {**row, "raw": _unsigned(raw)}


def _unsigned(value: Any) -> Any:
    """The payload without its signed links, wherever they are (an invoice's attachments, and
    in the published sample a line's attachments too)."""
    if isinstance(value, dict):
        return {k: _unsigned(v) for k, v in value.items() if k not in SIGNED_ON_EVERY_READ}
    if isinstance(value, list):
        return [_unsigned(v) for v in value]
    return value


def test_duckdb_and_postgres_hold_identical_rows(tmp_path: Path, pg_database: Database) -> None:
    to_duckdb, to_postgres = Workspace(tmp_path / "duckdb"), Workspace(tmp_path / "postgres")
    for ws in (to_duckdb, to_postgres):
        ws.path.mkdir()
    with every_sandbox() as (apps, env):
        duck = to_duckdb.run(env)
        assert duck.code == 0, duck.output
        pg = to_postgres.run({**env, **pg_database.env()})
        assert pg.code == 0, pg.output
    for table in TABLES:
        assert pg_columns(pg_database, table) == duckdb_columns(to_duckdb, table), table
        in_duckdb, in_postgres = duckdb_rows(to_duckdb, table), pg_rows(pg_database, table)
        assert {r["provider"] for r in in_duckdb} == set(apps), table
        assert len(in_postgres) == len(in_duckdb), table
        for duck_row, pg_row in zip(in_duckdb, in_postgres, strict=True):
            assert without_signed_links(pg_row) == without_signed_links(duck_row), table


def _view_rows(query: Any, view: str) -> list[tuple[Any, ...]]:
    rows = query(f"SELECT * FROM {DATASET}.{view}")
    comparable_rows = [tuple(str(v) if isinstance(v, Decimal) else v for v in row) for row in rows]
    return sorted(comparable_rows, key=repr)


def test_every_view_gives_the_same_figures_on_both(tmp_path: Path, pg_database: Database) -> None:
    to_duckdb, to_postgres = Workspace(tmp_path / "duckdb"), Workspace(tmp_path / "postgres")
    for ws in (to_duckdb, to_postgres):
        ws.path.mkdir()
    with every_sandbox() as (_, env):
        assert to_duckdb.run(env).code == 0
        pg = to_postgres.run({**env, **pg_database.env()})
        assert pg.code == 0, pg.output
    for view in VIEW_NAMES:
        if view == "invoices_current":
            continue  # every invoices column, `raw` included: compared through the tables above
        in_duckdb = _view_rows(to_duckdb.query, view)
        in_postgres = _view_rows(lambda sql: pg_database.query(sql), view)
        assert in_duckdb, view
        assert in_postgres == in_duckdb, view
    counts = {
        "duckdb": to_duckdb.scalar(f"SELECT count(*) FROM {DATASET}.invoices_current"),
        "postgres": pg_database.query(f"SELECT count(*) FROM {DATASET}.invoices_current")[0][0],
    }
    assert counts["duckdb"] == counts["postgres"] > 0
