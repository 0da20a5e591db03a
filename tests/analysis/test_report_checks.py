"""The report's data-health section shows each account's latest data checks and the newest
changes in the providers' payloads (pipelines/checks_report.py, docs/checks.md)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.report import write_report
from tests.support import Workspace

pytestmark = pytest.mark.integration


def health(db: Path, tmp_path: Path) -> dict[str, str]:
    page = write_report(tmp_path / "report.html", db).read_text(encoding="utf-8")
    found = re.search(r'<section id="health">(.*?)</section>', page, re.S)
    assert found
    parts = re.split(r"<h3>(.*?)</h3>", found.group(1))
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_latest_checks_of_every_account_and_no_change_yet(loaded: Workspace, tmp_path: Path) -> None:
    accounts = loaded.query("SELECT DISTINCT provider, account FROM billing.invoices")
    parts = health(loaded.db, tmp_path)
    rows = re.findall(r'<tr data-check="([^"]+)" data-passed="(true|false)">', parts["Data checks"])
    assert sorted(key for key, _ in rows) == sorted(
        f"{p}:{a}:{name}"
        for p, a in accounts
        for name in ("freshness", "volume", "totals", "unmapped", "schema_drift", "fx_coverage")
    )
    stored = dict(
        ((f"{p}:{a}:{n}"), str(passed).lower())
        for p, a, n, passed in loaded.query("SELECT provider, account, check_name, passed FROM billing.data_checks")
    )
    assert dict(rows) == stored
    assert parts["Changes in the providers' payloads"].startswith('<p class="none">None')


def test_a_failed_check_says_what_to_do_and_changes_are_listed_newest_first(loaded: Workspace, tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(loaded.db, db)
    with duckdb.connect(str(db)) as con:
        con.execute(
            "INSERT INTO billing.data_checks (run_id, checked_at, provider, account, check_name, severity, passed, "
            "observed, expected, detail, _dlt_load_id, _dlt_id) VALUES ('99990101T000000Z-ffffff', "
            "now() + INTERVAL 1 DAY, 'kitchen', 'acme', 'volume', 'error', false, '0 listed', 'at least 23', "
            "'kitchen [acme] listed no invoice: check it', 'test', 'test')"
        )
        con.execute(
            "CREATE TABLE billing.schema_changes (provider TEXT, account TEXT, record_type TEXT, path TEXT, "
            "change TEXT, type_before TEXT, type_after TEXT, first_seen_run TEXT, example_key TEXT)"
        )
        con.execute(
            "INSERT INTO billing.schema_changes VALUES "
            "('kitchen', 'acme', 'invoice', '$.memo', 'vanished', 'null|string', NULL, 'r2', 'in_1'), "
            "('kitchen', 'acme', 'line', '$.items[].amount', 'type_changed', 'number', 'number|string', 'r3', "
            "'in_1 line 2')"
        )
    parts = health(db, tmp_path)
    checks = parts["Data checks"]
    # The latest check run of kitchen [acme] is the one added: its single row, failed, with what to do.
    assert re.findall(r'data-check="kitchen:acme:[a-z_]+"', checks) == ['data-check="kitchen:acme:volume"']
    assert 'data-passed="false"' in checks and "kitchen [acme] listed no invoice: check it" in checks
    assert '<td class="status-failed check-error">failed</td>' in checks
    changes = parts["Changes in the providers' payloads"]
    paths = re.findall(r'<tr data-change="(\w+)"><td class="who">([^<]+)<small>', changes)
    assert paths == [("type_changed", "$.items[].amount"), ("vanished", "$.memo")]
    assert "number → number|string" in changes and "null|string" in changes


def test_a_warehouse_that_does_not_check_says_so(loaded: Workspace, tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(loaded.db, db)
    with duckdb.connect(str(db)) as con:
        con.execute("DROP TABLE billing.data_checks")
    parts = health(db, tmp_path)
    assert parts["Data checks"].startswith('<p class="muted">Not recorded in this warehouse')
    assert parts["Changes in the providers' payloads"].startswith('<p class="muted">Not recorded')
