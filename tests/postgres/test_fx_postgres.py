"""The reporting-currency SQL gives the same digits on Postgres as on DuckDB and as the Python
reference, for a fixed sample (tests/fx/sample.py): the DuckDB-dialect SQL, transpiled; and the
views' converted columns, created as a load creates them, for a sample warehouse
(tests/fx/warehouse.py)."""

from __future__ import annotations

import contextlib

import duckdb
import pytest

from pipelines.fx import minor_unit
from pipelines.fx_sql import to_dialect
from tests.fx import sample, warehouse
from tests.postgres.cluster import Database

pytestmark = pytest.mark.postgres


def test_postgres_converts_the_sample_exactly_as_duckdb_and_python(pg_database: Database) -> None:
    connection = contextlib.closing(pg_database.cluster.connect(pg_database.name))
    with connection as pg, pg.cursor() as cursor:
        for statement in sample.setup_statements():
            cursor.execute(to_dialect(statement, "postgres"))
    with duckdb.connect() as con:
        for statement in sample.setup_statements():
            con.execute(statement)
        for reporting in sample.REPORTING:
            query = sample.conversion_query(reporting)
            on_postgres = {r[0]: tuple(map(str, r[1:])) for r in pg_database.query(to_dialect(query, "postgres"))}
            on_duckdb = {r[0]: tuple(map(str, r[1:])) for r in con.execute(query).fetchall()}
            expected = {k: tuple(map(str, v)) for k, v in sample.reference(reporting).items()}
            assert on_postgres == expected, reporting
            assert on_duckdb == expected, reporting


def test_the_views_convert_on_postgres_as_on_duckdb_and_python(pg_database: Database) -> None:
    """Every view's `_rc`, `unconverted` and rate-date columns, for a sample of every kind of
    document (tests/fx/warehouse.py) in each reporting currency: Postgres, DuckDB and the Python
    reference agree digit for digit."""
    with contextlib.closing(pg_database.cluster.connect(pg_database.name)) as pg, pg.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
        cursor.execute("SELECT CURRENT_DATE")
        today = cursor.fetchone()[0]
        rates = warehouse.rate_rows(today)
        docs = warehouse.sample_docs(today, seed=5, count=400)
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            assert con.execute("SELECT CURRENT_DATE").fetchone() == (today,)
            for statement in warehouse.setup_statements(rates):
                con.execute(statement)
                cursor.execute(statement)
            warehouse.insert(con.execute, docs, "?")
            warehouse.insert(cursor.execute, docs, "%s")
            for reporting in warehouse.REPORTING:
                for statement in warehouse.views("duckdb", reporting):
                    con.execute(statement)
                for statement in warehouse.views("postgres", reporting):
                    cursor.execute(statement)
                want = warehouse.expected(docs, rates, reporting, today)
                exponent = minor_unit(reporting)
                for view, rows in want.items():
                    cursor.execute(warehouse.query(view))
                    on_postgres = warehouse.as_dict(view, cursor.fetchall())
                    on_duckdb = warehouse.as_dict(view, con.execute(warehouse.query(view)).fetchall())
                    assert warehouse.differences(on_postgres, rows, exponent) == [], (reporting, view)
                    assert warehouse.differences(on_duckdb, rows, exponent) == [], (reporting, view)
