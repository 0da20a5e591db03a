"""The SQL examples of the README and the guides run, and say what the views say.

Every fenced `sql` block of the pages a user follows (tests/doc_blocks.py) runs against the
warehouse loaded from every sandbox, and against its variant with receipts, quotes, proformas,
purchase orders and deleted documents (tests/analysis/conftest.py): the rows the views leave out.
An example that derives overdue documents or monthly revenue must give exactly what
`invoices_current.is_overdue` and `revenue_monthly` give.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipelines.warehouse import read_only
from tests.doc_blocks import Block, leading_comment, page_blocks, sql_statements

pytestmark = pytest.mark.integration

SQL_BLOCKS = page_blocks({"sql"})
STATEMENTS = [(block, sql) for block in SQL_BLOCKS for sql in sql_statements(block)]


def _id(item: tuple[Block, str]) -> str:
    block, sql = item
    return f"{block.where}:{leading_comment(sql)[:40] or sql.split()[0]}"


def run(db: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with read_only(db) as con:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        return columns, cursor.fetchall()


def examples(prefix: str) -> list[str]:
    return [sql for _, sql in STATEMENTS if leading_comment(sql).startswith(prefix)]


def test_the_pages_have_sql_examples() -> None:
    pages = {block.page.name for block in SQL_BLOCKS}
    assert {"README.md", "querying.md", "operations.md"} <= pages, pages
    assert len(examples("Overdue")) >= 3 and len(examples("Revenue by month")) >= 3


@pytest.mark.parametrize("item", STATEMENTS, ids=[_id(s) for s in STATEMENTS])
def test_every_sql_example_runs(warehouse: Path, item: tuple[Block, str]) -> None:
    block, sql = item
    columns, _ = run(warehouse, sql)
    assert columns, f"{block.where}: no result"


def _overdue_in_view(db: Path) -> set[tuple[Any, ...]]:
    _, rows = run(db, "SELECT provider, account, invoice_id FROM billing.invoices_current WHERE is_overdue")
    return set(rows)


@pytest.mark.parametrize("sql", examples("Overdue"), ids=lambda sql: leading_comment(sql)[:40])
def test_overdue_examples_agree_with_is_overdue(warehouse: Path, sql: str) -> None:
    columns, rows = run(warehouse, sql)
    keys = [columns.index(c) for c in ("provider", "account", "invoice_id")]
    found = [tuple(row[k] for k in keys) for row in rows]
    assert len(found) == len(set(found))
    expected = _overdue_in_view(warehouse)
    assert expected, "the warehouse has overdue documents"
    assert set(found) == expected


def _month(value: Any) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _revenue_in_view(db: Path) -> dict[tuple[dt.date, str], dict[str, Decimal]]:
    sql = """SELECT month, currency, sum(invoiced), sum(credited), sum(net)
             FROM billing.revenue_monthly GROUP BY ALL"""
    return {
        (month, currency): {"invoiced": invoiced, "credited": credited, "net": net}
        for month, currency, invoiced, credited, net in run(db, sql)[1]
    }


@pytest.mark.parametrize("sql", examples("Revenue by month"), ids=lambda sql: leading_comment(sql)[:40])
def test_revenue_examples_agree_with_revenue_monthly(warehouse: Path, sql: str) -> None:
    columns, rows = run(warehouse, sql)
    figures = [c for c in ("invoiced", "credited", "net") if c in columns]
    assert figures, columns
    at = {column: i for i, column in enumerate(columns)}
    got = {(_month(row[at["month"]]), row[at["currency"]]): {f: row[at[f]] for f in figures} for row in rows}
    assert len(got) == len(rows)
    expected = {key: {f: value[f] for f in figures} for key, value in _revenue_in_view(warehouse).items()}
    assert got == expected


def test_what_the_views_leave_out_is_there_to_leave_out(variant: Path) -> None:
    """The comparisons above mean something: in the variant, a receipt, a quote and a deleted
    document are in the tables, and revenue that counts them differs from revenue_monthly."""
    _, kinds = run(
        variant,
        """SELECT count(*) FILTER (WHERE document_type = 'receipt' AND status NOT IN ('draft', 'void')),
                  count(*) FILTER (WHERE document_type = 'quote'),
                  count(*) FILTER (WHERE deleted_at IS NOT NULL AND status = 'open')
           FROM billing.invoices""",
    )
    assert all(n > 0 for n in kinds[0]), kinds
    counting_everything = """
        SELECT date_trunc('month', issue_date) AS month, currency,
               sum(CASE WHEN document_type = 'credit_note' THEN -total ELSE total END) AS net
        FROM billing.invoices
        WHERE status NOT IN ('draft', 'void')
        GROUP BY ALL"""
    _, rows = run(variant, counting_everything)
    naive = {(_month(month), currency): net for month, currency, net in rows}
    assert naive != {key: value["net"] for key, value in _revenue_in_view(variant).items()}
    _, rows = run(
        variant,
        """SELECT provider, account, invoice_id FROM billing.invoices
           WHERE status IN ('open', 'partially_paid') AND due_date < current_date""",
    )
    assert set(rows) != _overdue_in_view(variant)
