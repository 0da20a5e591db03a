"""`make query` (python -m pipelines.query) on the loaded warehouse: limit, table and CSV."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support import Workspace

pytestmark = pytest.mark.integration


def query(workspace: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.query", *args],
        cwd=workspace.path,
        env=workspace.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_table_shows_20_rows_by_default_and_says_more_are_left(loaded: Workspace) -> None:
    shown = query(loaded, "SELECT invoice_id, total FROM billing.invoices ORDER BY invoice_id")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split(" | ")[0].strip() == "invoice_id" and len(lines) == 2 + 20 + 1
    assert "more not shown" in lines[-1]
    few = query(loaded, "--limit", "3", "SELECT * FROM billing.dso")
    assert len(few.stdout.splitlines()) == 2 + 3 + 1


def test_csv_to_stdout_and_to_a_file_has_every_row(loaded: Workspace, tmp_path: Path) -> None:
    count = loaded.scalar("SELECT count(*) FROM billing.invoices_current")
    out = query(loaded, "--csv", "SELECT invoice_id, balance_due, signed_total FROM billing.invoices_current")
    assert out.returncode == 0, out.stderr
    table = list(csv.reader(io.StringIO(out.stdout)))
    assert table[0] == ["invoice_id", "balance_due", "signed_total"] and len(table) == count + 1
    assert any(row[1] == "" for row in table[1:])  # NULL balances are empty fields
    target = tmp_path / "aging.csv"
    written = query(loaded, "--csv", "--limit", "5", "--output", str(target), "SELECT * FROM billing.receivables_aging")
    assert written.returncode == 0 and written.stdout == ""
    assert len(target.read_text().splitlines()) == 6


def test_a_wrong_statement_is_an_error_not_a_traceback(loaded: Workspace) -> None:
    bad = query(loaded, "SELECT * FROM billing.nothing_here")
    assert bad.returncode == 1 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


def test_the_default_query_counts_no_document_twice(loaded: Workspace) -> None:
    """`make query` without SQL runs the demo's example: per provider and currency, what was
    invoiced (credit notes negative; receipts, which settle invoices already counted, quotes,
    drafts and voids left out), paid, outstanding and uncollectible."""
    assert loaded.scalar("SELECT count(*) FROM billing.invoices WHERE document_type = 'receipt'") > 0
    shown = query(loaded, "--csv")
    assert shown.returncode == 0, shown.stderr
    header, *rows = list(csv.reader(io.StringIO(shown.stdout)))
    assert header == ["provider", "currency", "documents", "invoiced", "paid", "outstanding", "uncollectible"]
    got = {(r[0], r[1]): tuple(Decimal(v) for v in r[3:]) for r in rows}
    billed = loaded.query(
        """SELECT provider, currency,
                  sum(CASE WHEN document_type = 'credit_note' THEN -total ELSE total END)
           FROM billing.invoices
           WHERE status NOT IN ('draft', 'void') AND deleted_at IS NULL
             AND document_type NOT IN ('receipt', 'quote', 'proforma', 'estimate', 'shipping', 'transport',
                                       'devolution', 'purchase_order')
           GROUP BY ALL"""
    )
    assert {key: figures[0] for key, figures in got.items()} == {(p, c): Decimal(t) for p, c, t in billed}
    owed = loaded.query("SELECT provider, currency, sum(outstanding) FROM billing.receivables_aging GROUP BY ALL")
    assert {key: figures[2] for key, figures in got.items() if figures[2]} == {
        (p, c): Decimal(o) for p, c, o in owed if o
    }
