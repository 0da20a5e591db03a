"""The reporting currency in every run (docs/reporting-currency.md): the `[analysis]` settings,
the euro reference rates loaded into `fx_rates` after the providers, and what the run's summary
says about them.

- `reporting_currency()` reads `[analysis] reporting_currency` (env ANALYSIS__REPORTING_CURRENCY,
  default EUR); a code that is not a current ISO 4217 code with a minor unit stops the run before
  it starts (exit 2, the key named).
- `load_rates(pipeline, transport, target)` loads the `ecb` source (`sources/ecb/`) into the
  run's dataset, in its own dlt schema (`ecb`), as `pipeline_runs` has its own: the shipped
  history on a first run, then the ECB's files for the days not loaded yet, and the user's
  `[analysis] fx_rates_file`. Nothing of it fails a run: a feed that cannot be reached, a user
  file that is refused (then loaded without it) or a warehouse that would not take the rates is a
  warning, and the rates already loaded stay in use.
- `Rates.log_summary()` says, after the run's summary table, how fresh the rates are (the newest
  rate date per source) and repeats the warnings.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import dlt
import httpx

from pipelines.config import UsageError
from pipelines.failures import Stopped, Where, explain, stop_signal
from pipelines.fx import EUR, MAX_RATE_AGE_DAYS, minor_unit
from pipelines.retry import loading
from pipelines.warehouse import loader_file_format
from sources.ecb import UserRatesError, ecb
from sources.ecb.settings import NAME as RATES_SOURCE
from sources.ecb.settings import TABLE as RATES_TABLE
from sources.shared.redact import redact

__all__ = ["RATES_SOURCE", "Rates", "load_rates", "reporting_currency"]

log = logging.getLogger("billing.run")

REPORTING_CURRENCY = "reporting_currency"
FX_RATES_FILE = "fx_rates_file"  # read by the ecb source (sources/ecb/__init__.py)
ANALYSIS_KEYS = (REPORTING_CURRENCY, FX_RATES_FILE)  # every key of [analysis]
REPORTING_CURRENCY_KEY = f"[analysis] {REPORTING_CURRENCY} (env ANALYSIS__REPORTING_CURRENCY)"


def reporting_currency() -> str:
    """`[analysis] reporting_currency` (env ANALYSIS__REPORTING_CURRENCY), upper case; EUR when unset.

    Raises:
        UsageError: not a current ISO 4217 code, or one without a minor unit (XAU, XDR): the run
            stops before it starts (exit 2), naming the key.
    """
    value: Any = dlt.config.get(f"analysis.{REPORTING_CURRENCY}")
    if value is None or not str(value).strip():
        return EUR
    code = str(value).strip().upper()
    try:
        minor_unit(code)
    except ValueError as exc:
        raise UsageError(
            f"{REPORTING_CURRENCY_KEY} = {value!r}: {exc}. Set an ISO 4217 code such as EUR, USD or JPY"
        ) from None
    return code


@dataclass
class Rates:
    """What one run did with the rates: its warnings, and the newest rate date per source
    (`ecb`, `user`) the warehouse holds after it."""

    reporting: str = EUR
    notes: list[str] = field(default_factory=list)
    newest: dict[str, dt.date] = field(default_factory=dict)
    today: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())

    def summary_line(self) -> str:
        """`Rates: newest ECB rate 2026-12-04 (3 days old); reporting currency USD`, and what an old
        newest rate means for today's balances."""
        ecb_newest = self.newest.get("ecb")
        if ecb_newest is None and not self.newest:
            return f"Rates: none loaded, no amount can be converted; reporting currency {self.reporting}"
        parts = []
        if ecb_newest is not None:
            age = (self.today - ecb_newest).days
            parts.append(f"newest ECB rate {ecb_newest.isoformat()} ({age} day{'' if age == 1 else 's'} old)")
        user_newest = self.newest.get("user")
        if user_newest is not None:
            parts.append(f"newest rate of fx_rates_file {user_newest.isoformat()}")
        line = f"Rates: {', '.join(parts)}; reporting currency {self.reporting}"
        if ecb_newest is not None and (self.today - ecb_newest).days > MAX_RATE_AGE_DAYS:
            line += (
                f". A rate is used for {MAX_RATE_AGE_DAYS} days at most: amounts owed today in currencies other "
                f"than {self.reporting} convert once a run reads newer rates"
            )
        return line

    def log_summary(self) -> None:
        """The summary's lines about the rates, under the run's summary table (indented, as its
        notes): how fresh they are, then this run's warnings again."""
        log.info("  %s", self.summary_line())
        for note in self.notes:
            log.warning("  rates: %s", note)


def _warn(rates: Rates, message: str) -> None:
    log.warning("%s", message)
    rates.notes.append(message)


def load_rates(pipeline: dlt.Pipeline, transport: httpx.BaseTransport | None, target: Where) -> Rates:
    """Load the `ecb` source into `fx_rates` of the pipeline's dataset. Never raises for the
    rates' own problems (each is a warning in `Rates.notes`); a stop signal raises `Stopped`.

    `transport`, when given, carries the requests to the ECB's files (an in-process sandbox)."""
    rates = Rates(reporting=reporting_currency())
    log.info("→ euro reference rates (%s)", RATES_TABLE)
    try:
        source = ecb(transport=transport, notes=rates.notes)
    except UserRatesError as exc:
        _warn(rates, f"{exc}; the file was not read, the rates it gave before stay in use")
        source = ecb(transport=transport, notes=rates.notes, fx_rates_file="")
    file_format = loader_file_format(pipeline.destination)
    try:
        loading(pipeline, lambda: pipeline.run(source, loader_file_format=file_format), RATES_TABLE)
    except Stopped as stopped:
        raise _named(stopped, "extract") from None
    except Exception as exc:
        signum = stop_signal(exc)
        if signum is not None:
            raise _named(Stopped(signum), getattr(exc, "step", "extract")) from None
        reason = explain(exc, target) or redact(f"{type(exc).__name__}: {exc}")
        _warn(rates, f"the reference rates could not be loaded, the rates loaded before stay in use: {reason}")
    rates.newest = newest_rates(pipeline)
    return rates


def _named(stopped: Stopped, step: str) -> Stopped:
    """`stopped`, saying it stopped the rates' load in `step` (for the run's last line)."""
    stopped.provider, stopped.step = RATES_SOURCE, step  # type: ignore[attr-defined]
    return stopped


def newest_rates(pipeline: dlt.Pipeline) -> dict[str, dt.date]:
    """The newest `rate_date` per source in the dataset's `fx_rates` (empty without the table)."""
    try:
        with pipeline.sql_client() as client:
            table = client.make_qualified_table_name(RATES_TABLE)
            rows = client.execute_sql(f"SELECT source, MAX(rate_date) FROM {table} GROUP BY source")
    except Exception as exc:
        if stop_signal(exc) is not None:
            raise
        log.debug("no fx_rates to read: %s", exc)
        return {}
    return {str(source): _date(day) for source, day in rows or [] if day is not None}


def _date(value: Any) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value
