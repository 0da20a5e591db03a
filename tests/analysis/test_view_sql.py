"""The views' SQL as each destination gets it, without a warehouse."""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot

from pipelines.views import VIEW_NAMES, view_statements


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
    assert [s.split()[-1] for s in drops] == [f'"billing"."{v}"' for v in reversed(VIEW_NAMES)]
    assert [s.split()[2] for s in creates] == [f'"billing"."{v}"' for v in VIEW_NAMES]
    for statement in creates:
        sqlglot.parse_one(statement, read=dialect)  # valid in the destination's dialect
        assert '"billing"."invoices' in statement
        assert " FROM invoices" not in statement
    assert ("deleted_at" in creates[0]) is has_deleted_at
    assert all("deleted_at" not in s for s in creates[1:])


def test_postgres_gets_postgres_sql() -> None:
    dso = view_statements(Client("postgres"), True)[-1]
    assert "CURRENT_DATE - 90" in dso
    assert "DATE_TRUNC('MONTH', issue_date)" in view_statements(Client("postgres"), True)[-4]
