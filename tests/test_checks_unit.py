"""Each data check (pipelines/checks.py) on a small DuckDB warehouse written here with SQL: what
it observes, when it passes, when it fails and with which severity, and the sentence it writes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines import checks
from pipelines.checks import ERROR, WARNING, Check, Settings, evaluate
from pipelines.warehouse import duckdb_reader
from sources.shared.structure import Reads

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
ACME = ("kitchen", "acme")
DEFAULTS = Settings()


class Warehouse:
    """A warehouse of the tables the checks read, in the contract's columns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self.connect() as con:
            con.execute("CREATE SCHEMA billing")
            con.execute(
                "CREATE TABLE billing.pipeline_runs (run_id TEXT, provider TEXT, account TEXT, started_at TIMESTAMPTZ, "
                "finished_at TIMESTAMPTZ, status TEXT, invoices BIGINT, message TEXT, listed BIGINT)"
            )
            con.execute(
                "CREATE TABLE billing.invoices (provider TEXT, account TEXT, invoice_id TEXT, currency TEXT, "
                "subtotal DECIMAL(18, 6), tax_total DECIMAL(18, 6), shipping_total DECIMAL(18, 6), "
                "withholding_total DECIMAL(18, 6), total DECIMAL(18, 6), deleted_at TIMESTAMPTZ)"
            )
            con.execute(
                "CREATE TABLE billing.unmapped_records (provider TEXT, account TEXT, record_type TEXT, "
                "record_key TEXT, reason TEXT, first_seen_at TIMESTAMPTZ)"
            )
            con.execute(
                "CREATE TABLE billing.schema_changes (provider TEXT, account TEXT, record_type TEXT, path TEXT, "
                "change TEXT, type_before TEXT, type_after TEXT, first_seen_run TEXT, example_key TEXT)"
            )
            con.execute(
                "CREATE VIEW billing.invoices_current AS SELECT * FROM billing.invoices WHERE deleted_at IS NULL"
            )

    def connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.path))

    def sql(self, statement: str, *params: Any) -> None:
        with self.connect() as con:
            con.execute(statement, list(params))

    def run(
        self,
        hours_ago: float,
        status: str = "loaded",
        listed: int | None = 40,
        message: str | None = None,
        account: tuple[str, str] = ACME,
    ) -> str:
        started = NOW - dt.timedelta(hours=hours_ago)
        run_id = started.strftime("%Y%m%dT%H%M%SZ") + "-000000"
        self.sql(
            "INSERT INTO billing.pipeline_runs VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
            run_id,
            *account,
            started,
            started + dt.timedelta(minutes=1),
            status,
            message,
            listed,
        )
        return run_id

    def invoice(self, invoice_id: str, total: str = "12.30", deleted: bool = False, currency: str = "EUR") -> None:
        self.sql(
            "INSERT INTO billing.invoices VALUES ('kitchen', 'acme', ?, ?, 10, 2.30, 0, 0, ?, ?)",
            invoice_id,
            currency,
            total,
            NOW if deleted else None,
        )

    def checks(
        self, settings: Settings = DEFAULTS, reads: Callable[[str], Reads | None] | None = None, accounts: Any = None
    ) -> dict[str, Check]:
        with duckdb_reader(self.path) as r:
            found = evaluate(r, settings, NOW, accounts, reads or (lambda provider: Reads(invoice=("$.memo",))))
        assert {(c.provider, c.account) for c in found} <= {ACME, ("fohlio", "default")}
        return {c.check_name: c for c in found if (c.provider, c.account) == ACME}


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    found = Warehouse(tmp_path / "warehouse.duckdb")
    found.invoice("in-1")
    return found


def test_an_account_loaded_recently_passes_every_check(warehouse: Warehouse) -> None:
    for hours in (100, 76, 52, 28, 4):
        warehouse.run(hours)
    found = warehouse.checks()
    assert set(found) == set(checks.CHECKS)
    assert all(c.passed for c in found.values()), found
    assert found["freshness"].observed.startswith("4.0 h since")
    assert found["fx_coverage"].observed == "not applicable"
    assert {c.severity for c in found.values()} == {ERROR, WARNING}


def test_freshness_fails_past_the_limit_naming_the_latest_failure(warehouse: Warehouse) -> None:
    warehouse.run(40)
    warehouse.run(2, status="failed", listed=None, message="kitchen: HTTP 401 from /api/invoices")
    found = warehouse.checks()["freshness"]
    assert (found.passed, found.severity) == (False, ERROR)
    assert found.observed.startswith("40.0 h since") and found.expected == "at most 36 h"
    assert "HTTP 401" in found.detail and "billing-elt load --providers kitchen:acme" in found.detail
    assert warehouse.checks(Settings(max_hours_since_load=48))["freshness"].passed


def test_an_account_that_never_loaded_is_checked_and_stale(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.run(1, status="failed", listed=None, message="kitchen: workspace is empty")
    warehouse.run(1, status="loaded", account=("fohlio", "default"))
    found = warehouse.checks()
    assert found["freshness"].observed == "never loaded" and not found["freshness"].passed
    # An account with no rows whose latest run loaded (reset, say) is not checked at all.
    with duckdb_reader(warehouse.path) as r:
        assert checks.held_accounts(r) == {ACME}


def test_volume_compares_the_latest_listing_with_the_median_of_the_last_seven_successful_runs(
    warehouse: Warehouse,
) -> None:
    for hours, listed in enumerate([10, 41, 40, 39, 40, 42, 38, 40], start=1):
        warehouse.run(200 - hours, listed=listed)
    warehouse.run(50, status="failed", listed=None)  # a failed run that did not read its listing: not counted
    warehouse.run(30, listed=None)  # read incrementally: not counted
    warehouse.run(3, listed=21)
    found = warehouse.checks()["volume"]
    assert found.passed and found.observed.startswith("21 listed")
    assert found.expected == "at least 20 (50% of the median 40 of 7 runs)"
    warehouse.run(2, listed=19)
    found = warehouse.checks()["volume"]
    assert (found.passed, found.severity) == (False, ERROR)
    assert "19 invoices, 52% fewer than the median 40" in found.detail
    assert warehouse.checks(Settings(max_volume_drop=0.6))["volume"].passed


def test_volume_fails_on_nothing_listed_after_rows_even_when_a_guard_failed_the_run(warehouse: Warehouse) -> None:
    warehouse.run(30, listed=12)
    warehouse.run(1, status="failed", listed=0, message="refused to mark 12 invoices deleted")
    found = warehouse.checks(Settings(max_volume_drop=1.0))["volume"]
    assert not found.passed and "listed no invoice although its last 1 successful runs" in found.detail


def test_volume_has_nothing_to_compare_without_complete_listings(warehouse: Warehouse) -> None:
    warehouse.run(3, listed=None)
    assert warehouse.checks()["volume"].observed == "no complete listing recorded"
    warehouse.run(2, listed=40)
    assert warehouse.checks()["volume"].passed


def test_totals_counts_live_invoices_whose_figures_disagree(warehouse: Warehouse) -> None:
    warehouse.run(1)
    warehouse.invoice("in-2", total="12.31")  # within 0.01
    warehouse.invoice("in-3", total="12.32")
    warehouse.invoice("in-4", total="99")
    warehouse.invoice("in-5", total="50", deleted=True)  # deleted: not counted
    found = warehouse.checks()["totals"]
    assert (found.passed, found.severity, found.observed) == (False, WARNING, "2 invoices")
    assert "(e.g. in-3, in-4)" in found.detail


def test_unmapped_counts_what_waits_with_the_commonest_reason(warehouse: Warehouse) -> None:
    warehouse.run(1)
    for key, reason in (("a", "status: unknown"), ("b", "status: unknown"), ("c", "no currency")):
        warehouse.sql(
            "INSERT INTO billing.unmapped_records VALUES ('kitchen', 'acme', 'invoice', ?, ?, now())", key, reason
        )
    found = warehouse.checks()["unmapped"]
    assert (found.passed, found.severity, found.observed) == (False, WARNING, "3 records (invoices)")
    assert 'most for "status: unknown" (2)' in found.detail and "billing-elt remap kitchen:acme" in found.detail


def change(warehouse: Warehouse, path: str, kind: str, run_id: str, record_type: str = "invoice") -> None:
    warehouse.sql(
        "INSERT INTO billing.schema_changes VALUES ('kitchen', 'acme', ?, ?, ?, 'string', NULL, ?, 'in-1')",
        record_type,
        path,
        kind,
        run_id,
    )


def test_schema_drift_is_an_error_while_a_field_the_mapping_reads_is_gone(warehouse: Warehouse) -> None:
    first = warehouse.run(30)
    change(warehouse, "$.memo", "vanished", first)
    change(warehouse, "$.colour", "vanished", first)
    latest = warehouse.run(2)
    found = warehouse.checks()["schema_drift"]
    assert (found.passed, found.severity) == (False, ERROR)
    assert "$.memo (invoice) vanished" in found.detail and "$.colour" not in found.detail
    # The mapping no longer reads it (its declaration changed with it): no error.
    assert warehouse.checks(reads=lambda provider: Reads())["schema_drift"].passed
    change(warehouse, "$.memo", "added", latest)  # back again
    found = warehouse.checks()["schema_drift"]
    assert (found.passed, found.severity) == (False, WARNING)  # the latest run saw a change
    assert "1 added" in found.observed


def test_schema_drift_warns_of_the_latest_runs_changes_only(warehouse: Warehouse) -> None:
    first = warehouse.run(30)
    change(warehouse, "$.colour", "added", first)
    change(warehouse, "$.items[].tax", "type_changed", first, "line")
    found = warehouse.checks()["schema_drift"]
    assert (found.passed, found.severity, found.observed) == (False, WARNING, "2 change(s): 1 added, 1 type changed")
    warehouse.run(2)  # a later run saw nothing new
    assert warehouse.checks()["schema_drift"].passed


def test_fx_coverage_counts_documents_without_a_rate_when_the_views_convert(warehouse: Warehouse) -> None:
    warehouse.run(1)
    warehouse.invoice("in-2", currency="XAF")
    warehouse.invoice("in-3", currency="XAF")
    warehouse.sql("DROP VIEW billing.invoices_current")
    warehouse.sql(
        "CREATE VIEW billing.invoices_current AS SELECT *, CASE WHEN currency = 'EUR' THEN total END AS total_rc, "
        "CASE WHEN currency = 'EUR' THEN DATE '2026-03-09' END AS fx_rate_date, 'EUR' AS reporting_currency "
        "FROM billing.invoices WHERE deleted_at IS NULL"
    )
    found = warehouse.checks()["fx_coverage"]
    assert (found.passed, found.severity, found.observed) == (False, WARNING, "2 of 3 documents")
    assert "no rate to EUR (XAF 2)" in found.detail and "fx_rates_file" in found.detail
    warehouse.sql("DELETE FROM billing.invoices WHERE currency = 'XAF'")
    assert warehouse.checks()["fx_coverage"].observed == "0 of 1 documents"


def test_only_the_accounts_asked_for_are_checked(warehouse: Warehouse) -> None:
    warehouse.run(1)
    warehouse.run(1, status="failed", listed=None, account=("fohlio", "default"))
    with duckdb_reader(warehouse.path) as r:
        both = evaluate(r, Settings(), NOW)
        one = evaluate(r, Settings(), NOW, [("fohlio", "default")])
    assert {(c.provider, c.account) for c in both} == {ACME, ("fohlio", "default")}
    assert {(c.provider, c.account) for c in one} == {("fohlio", "default")} and len(one) == len(checks.CHECKS)


def test_a_warehouse_without_the_tables_has_nothing_to_check(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    with duckdb_reader(path) as r:
        assert evaluate(r, Settings(), NOW) == []


def test_settings_are_read_from_the_checks_section_and_refused_when_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKS__MAX_HOURS_SINCE_LOAD", "12")
    monkeypatch.setenv("CHECKS__MAX_VOLUME_DROP", "0.25")
    assert checks.settings() == Settings(12.0, 0.25)
    monkeypatch.setenv("CHECKS__MAX_VOLUME_DROP", "1.5")
    with pytest.raises(checks.config.UsageError, match="CHECKS__MAX_VOLUME_DROP"):
        checks.settings()
    monkeypatch.setenv("CHECKS__MAX_VOLUME_DROP", "half")
    with pytest.raises(checks.config.UsageError, match="is not a number"):
        checks.settings()
