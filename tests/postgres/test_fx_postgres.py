"""The reporting-currency SQL gives the same digits on Postgres as on DuckDB and as the Python
reference, for a fixed sample (tests/fx/sample.py): the DuckDB-dialect SQL, transpiled."""

from __future__ import annotations

import contextlib

import duckdb
import pytest

from pipelines.fx_sql import to_dialect
from tests.fx import sample
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
