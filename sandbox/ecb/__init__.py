"""The ECB's euro reference-rate files (`sources/ecb`): not a billing provider, a data feed.

Routes (under `/stats/eurofxref/`, as on www.ecb.europa.eu): `eurofxref-daily.xml`,
`eurofxref-hist-90d.xml`, `eurofxref-hist.xml`, `eurofxref-hist.zip` and `eurofxref.zip`. Rates
are generated for every TARGET business day from `history_start` up to the sandbox's clock
(`framework.utc_now()`): a day's rates appear once it is `publish_at` UTC (the ECB publishes at
about 16:00 CET). `fail_status` answers every file with that status; `framework.App.inject`
adds faults per file, and a stopped server or a refusing transport is an unreachable ECB.

Created with `create_feed` (not `create_app`): `sandbox.server.available()` lists the providers'
sandboxes, whose accounts the pipeline loads; `sandbox.server.feeds()` lists this one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sandbox import framework
from sandbox.ecb import data
from sandbox.framework import App, Request, Response, route

_XML = {"Content-Type": "text/xml"}
_ZIP = {"Content-Type": "application/zip"}
NINETY_DAYS = 90


@dataclass(kw_only=True)
class Options(framework.Options):
    history_start: dt.date = data.FIRST_DAY  # the first day of the history (a later one makes smaller files)
    publish_at: dt.time = dt.time(15, 0)  # UTC time after which the day's rates are published
    fail_status: int | None = None  # answer every file with this status (a 500 for the warning path)


class EcbApp(App):
    """The ECB's reference-rate files (`create_feed`)."""

    name = "ecb"

    def __init__(self, **options: Any) -> None:
        o = self.options = Options(**options)
        super().__init__(latency=o.latency)
        self._cache: dict[tuple[str, dt.date], bytes] = {}

    # --- the days ------------------------------------------------------------------------------
    def latest_day(self) -> dt.date:
        """The newest publication day at the sandbox's clock."""
        now = framework.utc_now()
        day = now.date() if now.time() >= self.options.publish_at else now.date() - dt.timedelta(days=1)
        while not data.is_business_day(day):
            day -= dt.timedelta(days=1)
        return day

    def days(self, since: dt.date | None = None) -> list[dt.date]:
        """Publication days from `since` (default: the history's start) to the latest, newest first."""
        return data.business_days(
            max(since or self.options.history_start, self.options.history_start), self.latest_day()
        )

    def rates(self, day: dt.date) -> dict[str, Decimal]:
        """What the files hold for `day` (empty when it is no publication day)."""
        if not data.is_business_day(day) or not self.options.history_start <= day <= self.latest_day():
            return {}
        return data.rates_of(self.options.seed, day)

    # --- the files -------------------------------------------------------------------------------
    def guard(self, request: Request, route: Any) -> Response | None:
        if self.options.fail_status is not None:
            body = b"<html><body><h1>Service unavailable</h1></body></html>"
            return Response(self.options.fail_status, body, {"Content-Type": "text/html"})
        return None

    def not_found(self, request: Request) -> Response:
        return Response(404, b"<html><body><h1>Page not found</h1></body></html>", {"Content-Type": "text/html"})

    def _file(self, name: str, make: Any) -> bytes:
        """A large file made once per publication day."""
        key = (name, self.latest_day())
        if key not in self._cache:
            self._cache = {k: v for k, v in self._cache.items() if k[1] == key[1]}
            self._cache[key] = make()
        return self._cache[key]

    @route("GET", "/stats/eurofxref/eurofxref-daily.xml")
    def daily(self, request: Request) -> Response:
        return Response(200, data.daily_xml(self.options.seed, self.latest_day()), dict(_XML))

    @route("GET", "/stats/eurofxref/eurofxref-hist-90d.xml")
    def ninety_days(self, request: Request) -> Response:
        since = self.latest_day() - dt.timedelta(days=NINETY_DAYS - 1)
        return Response(200, data.history_xml(self.options.seed, self.days(since)), dict(_XML))

    @route("GET", "/stats/eurofxref/eurofxref-hist.xml")
    def history_xml(self, request: Request) -> Response:
        body = self._file("hist.xml", lambda: data.history_xml(self.options.seed, self.days()))
        return Response(200, body, dict(_XML))

    @route("GET", "/stats/eurofxref/eurofxref-hist.zip")
    def history_zip(self, request: Request) -> Response:
        day = self.latest_day()
        body = self._file(
            "hist.zip", lambda: data.zipped("eurofxref-hist.csv", data.history_csv(self.options.seed, self.days()), day)
        )
        return Response(200, body, dict(_ZIP))

    @route("GET", "/stats/eurofxref/eurofxref.zip")
    def day_zip(self, request: Request) -> Response:
        day = self.latest_day()
        return Response(200, data.zipped("eurofxref.csv", data.day_csv(self.options.seed, day), day), dict(_ZIP))

    # --- configuration -------------------------------------------------------------------------
    def config(self, base_url: str) -> dict[str, str | None]:
        return {"base_url": f"{base_url}/stats/eurofxref"}

    def pipeline_env(self, base_url: str) -> dict[str, str]:
        """`SOURCES__ECB__BASE_URL` pointing the pipeline at this sandbox (no provider to ask), and
        `SOURCES__ECB__ENABLED` on, should the environment have turned the ECB's files off."""
        return {"SOURCES__ECB__BASE_URL": f"{base_url}/stats/eurofxref", "SOURCES__ECB__ENABLED": "true"}

    def summary_figures(self) -> tuple[int, list[tuple[str | None, Decimal, int]]]:
        return 0, []


create_feed = EcbApp
