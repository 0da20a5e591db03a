"""The views' SQL as each destination gets it, without a warehouse."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlglot

from pipelines.views import HISTORY_VIEW_NAMES, VIEW_NAMES, view_statements


class Capabilities:
    def __init__(self, dialect: str) -> None:
        self.sqlglot_dialect = dialect

    def escape_identifier(self, name: str) -> str:
        return f'"{name}"'


class Client:
    dataset_name = "billing"

    def __init__(self, dialect: str) -> None:
        self.capabilities: Any = Capabilities(dialect)

    def make_qualified_table_name_path(self, name: str, quote: bool = False) -> list[str]:
        return ["billing", name]


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
@pytest.mark.parametrize("has_deleted_at", [True, False])
def test_every_view_is_created_qualified_in_the_dataset(dialect: str, has_deleted_at: bool) -> None:
    statements = view_statements(Client(dialect), has_deleted_at)
    drops = [s for s in statements if s.startswith("DROP VIEW")]
    creates = [s for s in statements if s.startswith("CREATE VIEW")]
    every = (*VIEW_NAMES, *HISTORY_VIEW_NAMES)
    assert [s.split()[-1] for s in drops] == [f'"billing"."{v}"' for v in reversed(every)]
    assert [s.split()[2] for s in creates] == [f'"billing"."{v}"' for v in every]
    rates, *analysis = creates[: len(VIEW_NAMES)]
    assert '"billing"."fx_rates"' in rates  # the rate of each day, from the dataset's fx_rates
    for statement in creates:
        sqlglot.parse_one(statement, read=dialect)  # valid in the destination's dialect
        assert " FROM invoices" not in statement and " fx_rate_days " not in statement
    for statement in analysis:
        assert '"billing"."invoices' in statement
    for statement in creates:
        assert " FROM invoice_history" not in statement and " FROM pipeline_runs" not in statement
    assert '"billing"."fx_rate_days"' in analysis[0]
    assert ("deleted_at" in analysis[0]) is has_deleted_at
    assert all("deleted_at" not in s for s in analysis[1:])


@pytest.mark.parametrize("reporting", ["EUR", "JPY"])
def test_the_conversion_is_written_for_each_destination(reporting: str) -> None:
    """HUGEINT becomes NUMERIC outside DuckDB (sqlglot would write INT128, which Postgres lacks);
    never a DOUBLE on the conversion's path (only DSO's days are a ratio); the views without
    `fx_rates` yet read no rate at all."""
    on_postgres = " ".join(view_statements(Client("postgres"), True, reporting))
    on_duckdb = " ".join(view_statements(Client("duckdb"), True, reporting))
    assert "INT128" not in on_postgres and "HUGEINT" not in on_postgres and "AS DECIMAL)" in on_postgres
    assert "INT128" in on_duckdb or "HUGEINT" in on_duckdb
    for sql in (on_postgres, on_duckdb):
        money = re.sub(r"CASE WHEN s\.net_revenue > 0 THEN .*? END AS dso_days", "", sql)
        assert "AS dso_days" not in money and not re.search(r"DOUBLE|FLOAT|REAL", money)
        assert sql.count(f"'{reporting}' AS reporting_currency") == len(VIEW_NAMES) - 1
    without = view_statements(Client("postgres"), True, reporting, has_rates=False)[
        len(VIEW_NAMES) + len(HISTORY_VIEW_NAMES)
    ]
    assert "fx_rates" not in without and "WHERE 1 = 0" in without


def test_without_history_the_views_on_it_are_dropped_not_created() -> None:
    statements = view_statements(Client("duckdb"), True, has_history=False)
    creates = [s.split()[2] for s in statements if s.startswith("CREATE VIEW")]
    assert creates == [f'"billing"."{v}"' for v in VIEW_NAMES]
    assert f'DROP VIEW IF EXISTS "billing"."{HISTORY_VIEW_NAMES[-1]}"' in statements


def _create(dialect: str, view: str) -> str:
    return next(s for s in view_statements(Client(dialect), True) if s.startswith(f'CREATE VIEW "billing"."{view}"'))


def test_postgres_gets_postgres_sql() -> None:
    assert "CURRENT_DATE - 90" in _create("postgres", "dso")
    assert "DATE_TRUNC('MONTH', issue_date)" in _create("postgres", "revenue_monthly")
    assert "INTERVAL '1 MONTH'" in _create("postgres", "receivables_month_end")
