"""The HTML report, from a warehouse loaded from every sandbox: what it says about old data and
empty states, the totals in the reporting currency it leads with, and the page opened in a real
headless Chromium at a desktop's width (1400 px) and a phone's (390 px): every chart renders with
readable, non-overlapping text, nothing errors, nothing is fetched, the page never scrolls
sideways on the phone (tables scroll in their own box), every figure shown equals the analysis
views', the converted ones included, and every table row adds up.

`docs/report.png` is a screenshot this test takes. It cannot go stale silently: the browser test
always writes a fresh screenshot into its temporary folder, and writes it to `docs/report.png`
too when `UPDATE_REPORT_PNG=1` is set:

    UPDATE_REPORT_PNG=1 .venv/bin/python -m pytest -q tests/analysis/test_report.py

The picture carries, in a PNG text chunk, the SHA-256 of the `pipelines/report.py` that drew it,
and `test_the_docs_picture_is_of_this_report` (no browser needed) fails when the code differs,
naming the command above. Comparing pixels instead would fail for reasons that say nothing about
the report (fonts, Chromium versions, and figures that move with the date, since the page ages
receivables to the day it is made), while a change of the code that draws the page is exactly
when the picture may no longer show it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import zlib
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines import report as report_module
from pipelines.fx import minor_unit
from pipelines.report import STALE_AFTER_DAYS, money, write_report
from pipelines.views import DSO_WINDOW_DAYS
from pipelines.warehouse import read_only
from tests.analysis.conftest import refresh
from tests.browser import CHROMIUM, DevTools, open_in_chromium, screenshot, use_width
from tests.support import REPO, Workspace

pytestmark = pytest.mark.integration

DOCS_PICTURE = REPO / "docs" / "report.png"
PICTURE_KEY = b"billing-report-source-sha256"
UPDATE_VARIABLE = "UPDATE_REPORT_PNG"
DESKTOP, PHONE = 1400, 390
MIN_TEXT_PX = 10.0


def write_report_cli(workspace: Workspace, output: Path) -> Path:
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.billing", "report", "--output", str(output)],
        cwd=workspace.path,
        env=workspace.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert output.exists()
    return output


@pytest.fixture(scope="module")
def report(loaded: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report_cli(loaded, tmp_path_factory.mktemp("report") / "report.html")


def page_of(db: Path, tmp_path: Path) -> str:
    return write_report(tmp_path / "report.html", db).read_text(encoding="utf-8")


def section(page: str, key: str) -> str:
    found = re.search(rf'<section id="{key}">(.*?)</section>', page, re.S)
    assert found, key
    return found.group(1)


def cards(page: str, key: str) -> dict[str, str]:
    """Currency → the start of its card in a section (up to the card's first closing div)."""
    return dict(re.findall(r'<div class="card"><h3>([A-Z]{3})</h3>(.*?)</div>', section(page, key), re.S))


def test_the_report_is_self_contained(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page and "<link" not in page and "@import" not in page
    assert page.count("<svg") >= 3


# --- time windows and old data -------------------------------------------------------------


def expected_window(db: Path) -> list[dt.date]:
    """Up to 24 months, ending at the newest month revenue_monthly has, none before its oldest."""
    with read_only(db) as con:
        first, last = con.execute("SELECT min(month), max(month) FROM billing.revenue_monthly").fetchone() or (None,)
    index = last.year * 12 + last.month - 1
    months = [dt.date((index - i) // 12, (index - i) % 12 + 1, 1) for i in range(23, -1, -1)]
    return [m for m in months if m >= first]


def latest_invoices(db: Path) -> tuple[dt.date, dict[str, dt.date], dict[tuple[str, str, str], dt.date]]:
    """Today (the warehouse's), and the newest invoice date per currency and per provider account currency."""
    with read_only(db) as con:
        today = con.execute("SELECT current_date").fetchone()[0]  # type: ignore[index]
        rows = con.execute(
            "SELECT provider, account, currency, max(last_invoice_date) FROM billing.client_balances GROUP BY ALL"
        ).fetchall()
    per_currency: dict[str, dt.date] = {}
    for _, _, currency, latest in rows:
        if latest is not None:
            per_currency[currency] = max(latest, per_currency.get(currency, latest))
    return today, per_currency, {(p, a, c): d for p, a, c, d in rows if d is not None}


def test_every_revenue_chart_shows_the_same_months(loaded: Workspace, report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    months = expected_window(loaded.db)
    windows = re.findall(r'data-chart="revenue-([A-Z]{3})" data-window="([^"]+)"', page)
    assert windows and {w for _, w in windows} == {f"{months[0]:%Y-%m}/{months[-1]:%Y-%m}"}
    assert page.count('data-chart="revenue-') == len(windows)
    with read_only(loaded.db) as con:
        in_window = {
            c
            for (c,) in con.execute(
                "SELECT DISTINCT currency FROM billing.revenue_monthly WHERE month >= ?", [months[0]]
            ).fetchall()
        }
        every = {c for (c,) in con.execute("SELECT DISTINCT currency FROM billing.revenue_monthly").fetchall()}
    assert {c for c, _ in windows} == in_window
    # A currency with no document in those months is named, with when it last had one.
    quiet = re.search(r'<div class="card quiet"><h3>No billing documents in (.*?)</h3><ul>(.*?)</ul>', page, re.S)
    assert (quiet is not None) == bool(every - in_window)
    if quiet:
        assert quiet.group(1) == f"{months[0]:%b %Y} – {months[-1]:%b %Y}"
        assert set(re.findall(r"<li><b>([A-Z]{3})</b>", quiet.group(2))) == every - in_window


def test_old_data_is_said_where_it_shows(loaded: Workspace, report: Path) -> None:
    """Whatever the sandboxes' dates: a note on exactly the currencies whose newest invoice is old."""
    page = report.read_text(encoding="utf-8")
    today, per_currency, per_account = latest_invoices(loaded.db)
    header = re.search(r"<header>(.*?)</header>", page, re.S)
    assert header and f"latest invoice {max(per_currency.values()).isoformat()}" in header.group(1)
    for key in ("aging", "revenue"):
        for currency, card in cards(page, key).items():
            latest = per_currency.get(currency)
            old = latest is not None and (today - latest).days > STALE_AFTER_DAYS
            assert (f'<p class="old">latest invoice {latest}</p>' in card) == old, (key, currency)
    # Every DSO row says its latest invoice; those older than the DSO's 90 days are marked.
    dso = section(page, "dso")
    for (provider, account, currency), latest in per_account.items():
        row = re.search(
            rf'<td class="who">{provider}<small>{account}</small></td><td>{currency}</td>.*?</tr>', dso, re.S
        )
        if row is None:
            continue  # no receivable and no recent revenue: not a DSO row
        old = (today - latest).days > DSO_WINDOW_DAYS
        cell = f'<td class="old">{latest}</td>' if old else f"<td>{latest}</td>"
        assert cell in row.group(0), row.group(0)


def test_a_warehouse_whose_data_stops_long_ago_says_so(
    loaded: Workspace, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(loaded.db, db)
    with duckdb.connect(str(db)) as con:
        con.execute(
            "UPDATE billing.invoices SET issue_date = CAST(issue_date - INTERVAL 3 YEAR AS DATE), "
            "due_date = CAST(due_date - INTERVAL 3 YEAR AS DATE)"
        )
    page = page_of(db, tmp_path)
    today, per_currency, _ = latest_invoices(db)
    latest = max(per_currency.values())
    assert (today - latest).days > 3 * 365 - 60
    notice = re.search(r'<p class="notice" data-latest-invoice="([-0-9]+)">(.*?)</p>', page, re.S)
    assert notice and notice.group(1) == latest.isoformat()
    assert f"latest invoice {latest.isoformat()}, {(today - latest).days:,} days before this report" in notice.group(2)
    months = expected_window(db)
    assert set(re.findall(r'data-window="([^"]+)"', page)) == {f"{months[0]:%Y-%m}/{months[-1]:%Y-%m}"}
    # Every currency's cards say how old its data is.
    for key in ("aging", "revenue"):
        for currency, card in cards(page, key).items():
            assert f'<p class="old">latest invoice {per_currency[currency]}</p>' in card, (key, currency)


def test_a_warehouse_with_recent_data_has_no_notice(report: Path) -> None:
    # The sandboxes' newest invoice is days old: the page says when, and raises no alarm.
    page = report.read_text(encoding="utf-8")
    assert 'class="notice"' not in page


def client_rows(page: str) -> dict[str, dict[str, Decimal]]:
    """Each client row of the page: its key → {figure: value}."""
    rows: dict[str, dict[str, Decimal]] = {}
    for row in re.findall(r"<tr>(.*?)</tr>", section(page, "clients"), re.S):
        for figure, value in re.findall(r'data-figure="(client/[^"]+)" data-value="([^"]*)"', row):
            key, name = figure.rsplit("/", 1)
            rows.setdefault(key, {})[name] = Decimal(value)
    return rows


def test_a_client_row_adds_up_when_a_document_has_no_balance(loaded: Workspace, tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(loaded.db, db)
    with duckdb.connect(str(db)) as con:
        provider, account, client_id, currency, invoice_id, total = con.execute(
            """SELECT i.provider, i.account, i.client_id, i.currency, i.invoice_id, i.total
               FROM billing.invoices AS i
               JOIN billing.client_balances AS b USING (provider, account, client_id, currency)
               WHERE i.status = 'paid' AND i.document_type = 'invoice' AND i.total > 0 AND b.outstanding > 0
               ORDER BY b.outstanding DESC, i.invoice_id LIMIT 1"""
        ).fetchone()  # type: ignore[misc]
        con.execute(
            "UPDATE billing.invoices SET balance_due = NULL WHERE provider = ? AND account = ? AND invoice_id = ?",
            [provider, account, invoice_id],
        )
    page = page_of(db, tmp_path)
    rows = client_rows(page)
    row = rows[f"client/{currency}/{provider}/{account}/{client_id}"]
    assert row["other"] == total
    assert row["invoiced"] == row["paid"] + row["outstanding"] + row["uncollectible"] + row["other"]
    assert all("other" in r for k, r in rows.items() if k.startswith(f"client/{currency}/"))
    assert not any("other" in r for k, r in rows.items() if not k.startswith(f"client/{currency}/"))


# --- every currency in the reporting currency ------------------------------------------------


def test_the_report_leads_with_every_currency_in_the_reporting_currency(loaded: Workspace, report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    main = page[page.index("<main>") :]
    assert main.index('<div class="tile lead">') < main.index('<div class="tile">')
    assert re.findall(r'<section id="(\w+)">', page)[0] == "reporting"
    lead = section(page, "reporting")
    assert "which the ECB publishes for information purposes only" in lead
    assert "these figures are for reporting, not for accounting" in lead
    assert "add every currency up in EUR, for information (not accounting)" in page
    newest = loaded.scalar("SELECT max(fx_rate_date) FROM billing.receivables_aging")
    assert f'data-rate-date="{newest.isoformat()}"' in lead
    assert f"what is outstanding at the rates of {newest:%d %B %Y}" in lead or "the latest of each currency" in lead
    # The ECB's sandbox published up to today: every document of the sandboxes had a rate.
    assert loaded.scalar("SELECT sum(unconverted) FROM billing.revenue_monthly") == 0
    assert "Every document had a rate: none is left out of these totals." in lead
    assert 'data-chart="rc-revenue"' in lead


def test_documents_without_a_rate_are_counted_and_left_out(
    loaded: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An open invoice in kwanzas (no rate: the ECB does not publish AOA and there is no
    fx_rates_file) is in no converted total, and the page says so; in JPY every converted
    figure has no decimals."""
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(loaded.db, db)
    window = expected_window(db)
    with duckdb.connect(str(db)) as con:
        con.execute(
            """INSERT INTO billing.invoices BY NAME
               SELECT * REPLACE ('x-aoa-' || invoice_id AS invoice_id, 'AOA' AS currency) FROM billing.invoices
               WHERE status = 'open' AND document_type = 'invoice' AND balance_due > 0 AND issue_date >= ?
               ORDER BY invoice_id LIMIT 2""",
            [window[0]],
        )
    monkeypatch.setenv("ANALYSIS__REPORTING_CURRENCY", "JPY")
    assert refresh(db, tmp_path / "pipelines")
    page = page_of(db, tmp_path)
    lead = section(page, "reporting")
    counted = dict(re.findall(r'data-figure="rc/unconverted/(\w+)" data-value="(\d+)"', lead))
    assert counted == {"outstanding": "2", "revenue": "2"}
    assert "2</span> open document(s) in AOA (no rate today)" in lead
    with read_only(db) as con:
        figures = converted_figures(con, window)
        aoa = con.execute("SELECT outstanding_rc FROM billing.receivables_aging WHERE currency = 'AOA'").fetchall()
    assert aoa and all(row == (None,) for row in aoa)
    shown = dict(re.findall(r'data-figure="(rc/[a-z]+)" data-value="([^"]*)"', page))
    assert Decimal(shown["rc/outstanding"]) == figures["rc/outstanding"]
    assert Decimal(shown["rc/outstanding"]).as_tuple().exponent == 0  # yen have no minor unit
    assert re.search(r'data-figure="aging/AOA/outstanding_rc" data-value="" title="2 document\(s\) without', page)
    assert "All currencies in JPY, outstanding" in page


# --- empty states ---------------------------------------------------------------------------


def health(page: str) -> dict[str, str]:
    """The data-health section's subsections (heading → what follows it)."""
    parts = re.split(r"<h3>(.*?)</h3>", section(page, "health"))
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_nothing_unmapped_and_nothing_deleted_read_none(loaded: Workspace, report: Path) -> None:
    # The load wrote no unmapped_records table (it had nothing to put there), and its runs say so.
    assert "unmapped_records" not in {r[0] for r in loaded.query("SELECT table_name FROM information_schema.tables")}
    assert loaded.scalar("SELECT sum(unmapped) FROM billing.pipeline_runs") == 0
    assert loaded.scalar("SELECT count(*) FROM billing.invoices WHERE deleted_at IS NOT NULL") == 0
    parts = health(report.read_text(encoding="utf-8"))
    assert parts["Unmapped records"].startswith('<p class="none">None')
    assert parts["Deleted at the provider"].startswith('<p class="none">None')
    assert "<table" not in parts["Unmapped records"] + parts["Deleted at the provider"]


def test_deletions_list_only_the_accounts_that_have_some(variant: Path, tmp_path: Path) -> None:
    parts = health(page_of(variant, tmp_path))
    with read_only(variant) as con:
        want = con.execute(
            "SELECT 'invoices', provider, account, count(*) FROM billing.invoices WHERE deleted_at IS NOT NULL "
            "GROUP BY ALL UNION ALL SELECT 'clients', provider, account, count(*) FROM billing.clients "
            "WHERE deleted_at IS NOT NULL GROUP BY ALL"
        ).fetchall()
    assert want
    rows = re.findall(
        r'<tr><td class="who">(.*?)<small>(.*?)</small></td><td>(\w+)</td><td class="num">([\d,]+)</td>',
        parts["Deleted at the provider"],
    )
    assert sorted((t, p, a, int(n.replace(",", ""))) for p, a, t, n in rows) == sorted(want)


def test_unmapped_records_are_listed_and_not_recorded_is_not_none(loaded: Workspace, tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(loaded.db, db)
    with duckdb.connect(str(db)) as con:
        con.execute(
            "CREATE TABLE billing.unmapped_records (provider TEXT, account TEXT, record_type TEXT, reason TEXT, "
            "record_key TEXT, last_seen_at TIMESTAMPTZ)"
        )
        con.execute(
            "INSERT INTO billing.unmapped_records VALUES ('kitchen', 'acme', 'invoice', 'no currency', 'k-1', "
            "TIMESTAMPTZ '2026-01-02 03:04:05+00'), ('kitchen', 'acme', 'invoice', 'no currency', 'k-2', NULL)"
        )
    listed = health(page_of(db, tmp_path))["Unmapped records"]
    assert re.search(
        r'kitchen<small>acme</small></td><td>invoice</td><td>no currency</td><td class="num">2</td>', listed
    )
    assert "2026-01-02 03:04 UTC" in listed

    # A warehouse older than pipeline_runs and deleted_at: neither can be said to be none.
    with duckdb.connect(str(db)) as con:
        con.execute("DROP TABLE billing.unmapped_records")
        con.execute("DROP TABLE billing.pipeline_runs")
        for view in ("dso", "client_balances", "receivables_aging", "revenue_monthly", "invoices_current"):
            con.execute(f"DROP VIEW billing.{view}")
        con.execute("ALTER TABLE billing.invoices DROP COLUMN deleted_at")
        con.execute("ALTER TABLE billing.clients DROP COLUMN deleted_at")
    assert refresh(db, tmp_path / "pipelines")
    parts = health(page_of(db, tmp_path))
    assert parts["Unmapped records"].startswith('<p class="muted">Not recorded in this warehouse')
    assert parts["Deleted at the provider"].startswith('<p class="muted">Not recorded in this warehouse')


# --- the page in Chromium -------------------------------------------------------------------


def view_figures(db: Path) -> dict[str, Decimal | None]:
    """What each `data-figure` key must show, read from the views here."""
    expected: dict[str, Decimal | None] = {}
    months = expected_window(db)
    with read_only(db) as con:
        buckets = ["not_yet_due", "days_1_30", "days_31_60", "days_61_90", "days_over_90", "no_due_date", "outstanding"]
        sums = ", ".join(f"sum({b})" for b in buckets)
        for currency, *values in con.execute(
            f"SELECT currency, {sums} FROM billing.receivables_aging GROUP BY 1"
        ).fetchall():
            expected.update({f"aging/{currency}/{b}": v for b, v in zip(buckets, values, strict=True)})
        for currency, month, invoiced, credited, net in con.execute(
            "SELECT currency, month, sum(invoiced), sum(credited), sum(net) FROM billing.revenue_monthly "
            "WHERE month >= ? GROUP BY 1, 2",
            [months[0]],
        ).fetchall():
            key = f"revenue/{currency}/{month:%Y-%m}"
            expected.update({f"{key}/invoiced": invoiced, f"{key}/credited": credited, f"{key}/net": net})
        for row in con.execute(
            "SELECT provider, account, client_id, currency, invoiced, paid, outstanding, uncollectible "
            "FROM billing.client_balances"
        ).fetchall():
            key = f"client/{row[3]}/{row[0]}/{row[1]}/{row[2]}"
            names = ("invoiced", "paid", "outstanding", "uncollectible")
            expected.update({f"{key}/{name}": value for name, value in zip(names, row[4:], strict=True)})
            expected[f"{key}/other"] = row[4] - row[5] - row[6] - row[7]
        for provider, account, currency, outstanding, revenue, days in con.execute(
            "SELECT provider, account, currency, outstanding, net_revenue_90d, dso_days FROM billing.dso"
        ).fetchall():
            key = f"dso/{provider}/{account}/{currency}"
            expected.update(
                {f"{key}/outstanding": outstanding, f"{key}/net_revenue_90d": revenue, f"{key}/dso_days": days}
            )
        expected.update(converted_figures(con, months))
    expected.update(history_figures(db))
    return expected


def converted_figures(con: duckdb.DuckDBPyConnection, months: list[dt.date]) -> dict[str, Decimal | None]:
    """The figures in the reporting currency, summed here from the views' `_rc` columns."""
    expected: dict[str, Decimal | None] = {}
    rows = con.execute(
        "SELECT currency, sum(outstanding_rc), sum(overdue_rc), sum(unconverted) FROM billing.receivables_aging "
        "GROUP BY 1"
    ).fetchall()
    for currency, outstanding, _, _ in rows:
        expected[f"aging/{currency}/outstanding_rc"] = outstanding
    for name, column in (("outstanding", 1), ("overdue", 2)):
        values = [r[column] for r in rows if r[column] is not None]
        expected[f"rc/{name}"] = sum(values, Decimal(0)) if values else None
    open_documents = sum(int(r[3]) for r in rows)
    if open_documents:
        expected["rc/unconverted/outstanding"] = Decimal(open_documents)
    revenue = con.execute(
        "SELECT month, sum(invoiced_rc), sum(credited_rc), sum(net_rc), sum(unconverted) FROM billing.revenue_monthly "
        "WHERE month >= ? GROUP BY 1",
        [months[0]],
    ).fetchall()
    for month, invoiced, credited, net, _ in revenue:
        key = f"rc/revenue/{month:%Y-%m}"
        expected.update({f"{key}/invoiced": invoiced, f"{key}/credited": credited, f"{key}/net": net})
    if sum(int(r[4]) for r in revenue):
        expected["rc/unconverted/revenue"] = Decimal(sum(int(r[4]) for r in revenue))
    return expected


def reporting_currency(db: Path) -> str:
    with read_only(db) as con:
        row = con.execute("SELECT min(reporting_currency) FROM billing.invoices_current").fetchone()
    assert row is not None and row[0]
    return str(row[0])


def _days(values: list[int]) -> tuple[Decimal | None, Decimal | None]:
    """The average and the population standard deviation of whole days (None of none)."""
    if not values:
        return None, None
    average = Fraction(sum(values), len(values))
    spread = statistics.pstdev([Fraction(v) for v in values])
    to_millionth = Decimal(1).scaleb(-6)
    exact = (Decimal(average.numerator) / Decimal(average.denominator)).quantize(to_millionth)
    return exact, Decimal(str(spread)).quantize(to_millionth)


def history_figures(db: Path) -> dict[str, Decimal | None]:
    """What the history figures (`pay/`, `late/`, the DSO's days to pay, `monthend/`) must show,
    computed here from the rows of invoice_payments and receivables_month_end."""
    expected: dict[str, Decimal | None] = {}
    with read_only(db) as con:
        views = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "invoice_payments" not in views:
            return expected
        paid = con.execute(
            "SELECT provider, account, coalesce(client_id, ''), currency, days_to_pay, days_late "
            "FROM billing.invoice_payments"
        ).fetchall()
        estimated = {
            f"{p}/{a}/{c}" for p, a, c in con.execute("SELECT provider, account, currency FROM billing.dso").fetchall()
        }
        months = con.execute(
            "SELECT currency, month, sum(no_due_date), sum(not_yet_due), sum(days_1_30), sum(days_31_60), "
            "sum(days_61_90), sum(days_over_90), sum(outstanding) FROM billing.receivables_month_end GROUP BY ALL"
        ).fetchall()
    clients: dict[str, list[tuple[Any, Any]]] = {}
    accounts: dict[str, list[tuple[Any, Any]]] = {}
    for provider, account, client, currency, days, late in paid:
        clients.setdefault(f"{currency}/{provider}/{account}/{client}", []).append((days, late))
        accounts.setdefault(f"{provider}/{account}/{currency}", []).append((days, late))
    for key, rows in clients.items():
        known = [d for d, _ in rows if d is not None]
        lates = [x for _, x in rows if x is not None and x > 0]
        average, spread = _days(known)
        expected.update(
            {
                f"pay/{key}/paid": Decimal(len(rows)),
                f"pay/{key}/days_known": Decimal(len(known)),
                f"pay/{key}/days_to_pay": average,
                f"pay/{key}/days_to_pay_spread": spread,
                f"pay/{key}/fastest": Decimal(min(known)) if known else None,
                f"pay/{key}/slowest": Decimal(max(known)) if known else None,
                f"pay/{key}/paid_late": Decimal(len(lates)),
            }
        )
        if lates:
            expected[f"late/{key}/paid_late"] = Decimal(len(lates))
            expected[f"late/{key}/days_late"] = _days(lates)[0]
            expected[f"late/{key}/most_days_late"] = Decimal(max(lates))
    for key in estimated:  # shown beside the estimate only, where there is one
        known = [d for d, _ in accounts.get(key, []) if d is not None]
        average, spread = _days(known)
        expected.update(
            {
                f"dso/{key}/days_to_pay": average,
                f"dso/{key}/days_to_pay_spread": spread,
                f"dso/{key}/days_known": Decimal(len(known)),
            }
        )
    buckets = ("no_due_date", "not_yet_due", "days_1_30", "days_31_60", "days_61_90", "days_over_90", "outstanding")
    owing = {currency for currency, _, *values in months if any(values)}  # the others: a sentence, no figure
    for currency, month, *values in months:
        if currency not in owing:
            continue
        for bucket, value in zip(buckets, values, strict=True):
            expected[f"monthend/{currency}/{month:%Y-%m}/{bucket}"] = value
    return expected


COUNTS = ("/paid", "/days_known", "/paid_late")
DAYS = ("/days_to_pay", "/days_to_pay_spread", "/fastest", "/slowest", "/days_late", "/most_days_late")


def expected_text(key: str, want: Decimal, reporting: str = "EUR") -> str | None:
    """How a figure reads; None where it reads `k of n` (checked by its start). Figures in the
    reporting currency have its decimals."""
    if key.endswith("/dso_days"):
        return f"{want:,.1f} days"
    if key.startswith("rc/unconverted/"):
        return f"{want:,}"
    if key.startswith("rc/") or key.endswith("_rc"):
        return money(want, minor_unit(reporting))
    if not key.startswith(("pay/", "late/", "dso/")):
        return money(want)
    if key.startswith(("dso/", "late/")) and key.endswith(COUNTS):
        return None
    if key.endswith(COUNTS):
        return f"{int(want):,}"
    if key.endswith(DAYS):
        return f"{want:,.1f}"
    return money(want)


def check_figures(shown: list[list[str]], expected: dict[str, Decimal | None], reporting: str) -> None:
    """Every figure shown is the views' (value and text, converted ones with the reporting
    currency's decimals); every aging, DSO, in-window revenue and history figure of the views is
    shown, in each currency and converted."""
    keys = {key for key, _, _ in shown}
    assert len(keys) == len(shown), "a figure is shown twice"
    prefixes = ("aging/", "dso/", "revenue/", "rc/", "pay/", "monthend/")
    assert {k for k in expected if k.startswith(prefixes)} <= keys
    for key, value, text in shown:
        assert key in expected, key
        want = expected[key]
        if want is None:
            assert value == "" and text == "—", key
            continue
        if key.endswith("_spread"):  # a square root: the reference's is a float's
            assert abs(Decimal(value) - want) <= Decimal("0.000001"), key
        else:
            assert Decimal(value) == want, key
        text_of = expected_text(key, want, reporting)
        if text_of is None:
            assert text.startswith(f"{int(want):,} of "), key
        else:
            assert text == text_of, key


def check_rows_add_up(rows: list[list[list[str]]]) -> int:
    """In every table row: the aging buckets add up to outstanding, invoiced + credit notes to
    net, and a client's invoiced to paid + outstanding + uncollectible (+ other). Returns the
    number of client rows."""
    clients = 0
    for row in rows:
        if not row:
            continue
        figures = {key.rsplit("/", 1)[1]: Decimal(value or 0) for key, value in row}
        kind = row[0][0].split("/", 1)[0]
        if kind in ("aging", "monthend"):
            buckets = ("not_yet_due", "days_1_30", "days_31_60", "days_61_90", "days_over_90", "no_due_date")
            assert sum(figures[b] for b in buckets) == figures["outstanding"], row
        elif kind == "revenue" or (kind == "rc" and row[0][0].startswith("rc/revenue/")):
            assert figures["invoiced"] + figures["credited"] == figures["net"], row
        elif kind == "client":
            clients += 1
            parts = figures["paid"] + figures["outstanding"] + figures["uncollectible"] + figures.get("other", 0)
            assert figures["invoiced"] == parts, row
    return clients


READ_CHARTS = """Array.from(document.querySelectorAll('svg.chart')).map(s => {
  const box = s.getBoundingClientRect();
  const scale = box.width / s.viewBox.baseVal.width;
  const marks = Array.from(s.querySelectorAll('rect, circle, polyline')).filter(e => {
    const b = e.getBoundingClientRect(); return b.width > 0 && b.height > 0; });
  const texts = Array.from(s.querySelectorAll('text')).filter(t => getComputedStyle(t).display !== 'none')
    .map(t => { const b = t.getBoundingClientRect();
                return {text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize) * scale,
                        box: [b.left, b.top, b.right, b.bottom]}; });
  return {name: s.dataset.chart, box: [box.left, box.top, box.right, box.bottom], width: box.width,
          height: box.height, marks: marks.length, texts: texts};
})"""
READ_FIGURES = """Array.from(document.querySelectorAll('[data-figure]')).map(
  e => [e.dataset.figure, e.dataset.value, e.textContent])"""
READ_ROWS = """Array.from(document.querySelectorAll('tr')).map(tr => Array.from(
  tr.querySelectorAll('[data-figure]')).map(e => [e.dataset.figure, e.dataset.value]))"""
# Every table and where its scrolling box ends; every figure's cell, whether it is drawn.
READ_TABLES = """Array.from(document.querySelectorAll('table')).map(t => {
  const box = t.parentElement.getBoundingClientRect();
  return {scroll: t.parentElement.classList.contains('scroll'), overflow: getComputedStyle(t.parentElement).overflowX,
          left: box.left, right: box.right}; })"""
DRAWN = """Array.from(document.querySelectorAll('[data-figure]')).every(e => e.getClientRects().length > 0)"""


def check_charts(charts: list[dict[str, Any]], width: int) -> None:
    """Every chart drawn, inside the page, its text readable, inside the chart and not overlapping."""
    for chart in charts:
        name = chart["name"]
        assert chart["width"] > 0 and chart["height"] > 0 and chart["marks"] > 0, name
        left, top, right, bottom = chart["box"]
        assert left >= 0 and right <= width + 0.5, (name, chart["box"])
        texts = chart["texts"]
        assert texts, name
        for t in texts:
            assert t["px"] >= MIN_TEXT_PX, (width, name, t)
            x1, y1, x2, y2 = t["box"]
            assert x1 >= left - 0.5 and x2 <= right + 0.5 and y1 >= top - 0.5 and y2 <= bottom + 0.5, (width, name, t)
        for i, a in enumerate(texts):
            for b in texts[i + 1 :]:
                (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = a["box"], b["box"]
                apart = ax2 <= bx1 + 0.5 or bx2 <= ax1 + 0.5 or ay2 <= by1 + 0.5 or by2 <= ay1 + 0.5
                assert apart, (width, name, a, b)


def errors_and_requests(tools: DevTools) -> tuple[list[dict[str, Any]], list[str]]:
    errors = [
        e
        for e in tools.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    requests = [e["params"]["request"]["url"] for e in tools.events if e.get("method") == "Network.requestWillBeSent"]
    return errors, requests


def with_source_hash(png: bytes, digest: str) -> bytes:
    """`png` with a tEXt chunk holding `digest`, right after its header chunk."""
    data = PICTURE_KEY + b"\0" + digest.encode()
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
    end_of_header = 8 + 8 + 13 + 4
    assert png[12:16] == b"IHDR"
    return png[:end_of_header] + chunk + png[end_of_header:]


def source_hash_of(png: bytes) -> str | None:
    at = 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        if kind == b"tEXt" and data.startswith(PICTURE_KEY + b"\0"):
            return data[len(PICTURE_KEY) + 1 :].decode()
        at += 12 + length
    return None


def report_source_hash() -> str:
    source = Path(report_module.__file__).read_text(encoding="utf-8").replace("\r\n", "\n")
    return hashlib.sha256(source.encode()).hexdigest()


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium); browser test skipped"
)
def test_the_report_in_chromium_on_a_desktop_and_a_phone(loaded: Workspace, report: Path, tmp_path: Path) -> None:
    browser, tools = open_in_chromium(report.resolve().as_uri(), tmp_path / "profile")
    seen: dict[int, dict[str, Any]] = {}
    try:
        for width in (DESKTOP, PHONE):
            use_width(tools, width)
            seen[width] = {
                "charts": tools.evaluate(READ_CHARTS),
                "scroll_width": tools.evaluate("document.documentElement.scrollWidth"),
                "tables": tools.evaluate(READ_TABLES),
            }
            picture = screenshot(tools, width)
            (tmp_path / f"report-{width}.png").write_bytes(picture)
            if width == DESKTOP and os.environ.get(UPDATE_VARIABLE):
                DOCS_PICTURE.write_bytes(with_source_hash(picture, report_source_hash()))
            use_width(tools, width)
            tools.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; }); true")
            seen[width].update(
                figures=tools.evaluate(READ_FIGURES), rows=tools.evaluate(READ_ROWS), drawn=tools.evaluate(DRAWN)
            )
            tools.evaluate("document.querySelectorAll('details').forEach(d => { d.open = false; }); true")
    finally:
        tools.ws.close()
        browser.terminate()
        browser.wait(timeout=30)

    errors, requests = errors_and_requests(tools)
    assert not errors, errors
    assert all(url.startswith(("file:", "data:")) for url in requests), requests

    expected = view_figures(loaded.db)
    aging_currencies = {r[0] for r in loaded.query("SELECT DISTINCT currency FROM billing.receivables_aging")}
    revenue_currencies = {
        r[0]
        for r in loaded.query(
            "SELECT DISTINCT currency FROM billing.revenue_monthly WHERE month >= ?", expected_window(loaded.db)[0]
        )
    }
    for width, page in seen.items():
        names = {c["name"] for c in page["charts"]}
        assert {f"aging-{c}" for c in aging_currencies} | {f"revenue-{c}" for c in revenue_currencies} <= names
        assert any(n.startswith("clients-") for n in names)
        check_charts(page["charts"], width)
        check_figures(page["figures"], expected, reporting_currency(loaded.db))
        assert page["drawn"], f"a figure is not drawn at {width} px"
        assert check_rows_add_up(page["rows"]) > 0
        assert page["scroll_width"] <= width, f"the page scrolls sideways at {width} px"
        for table in page["tables"]:
            assert table["scroll"] and table["overflow"] == "auto", table
            assert table["left"] >= 0 and table["right"] <= width + 0.5, table
        assert (tmp_path / f"report-{width}.png").stat().st_size > 10_000


def test_the_docs_picture_is_of_this_report() -> None:
    """docs/report.png was taken of the page the current pipelines/report.py draws."""
    made_by = source_hash_of(DOCS_PICTURE.read_bytes())
    assert made_by == report_source_hash(), (
        "docs/report.png was taken of another version of pipelines/report.py: take it again with "
        f"`{UPDATE_VARIABLE}=1 .venv/bin/python -m pytest -q tests/analysis/test_report.py` (needs chromium)"
    )
