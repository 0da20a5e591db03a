"""The ECB's public reference-rate files, read for the days a warehouse does not have yet.

Which file is read depends on the newest ECB rate already loaded (`newest`):
- none, or older than `NINETY_DAYS_REACH` days: the full history, `eurofxref-hist.zip` (~600 kB);
- else the latest day, `eurofxref-daily.xml` (~2 kB), which is all a daily run needs; when a
  business day lies between `newest` and the day it holds (a missed run, a long weekend), the
  90-day file `eurofxref-hist-90d.xml` as well, and the full history if even that does not reach
  back far enough.

A file that cannot be fetched or read raises `FeedUnavailable`: the caller reports it as a note,
never as a failed load (the shipped history still converts).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from sources.ecb.rates import Rate, RateFormatError, xml_rates
from sources.ecb.settings import DAILY_XML, HISTORY_ZIP, NINETY_DAYS_REACH, NINETY_DAYS_XML, TIMEOUT
from sources.ecb.shipped import zip_rates
from sources.shared.http import USER_AGENT, excerpt, interruptible_sleep
from sources.shared.redact import redact

log = logging.getLogger("billing.ecb")


class FeedUnavailable(Exception):
    """An ECB file could not be fetched (unreachable, an error status) or read."""


def weekdays_between(after: dt.date, before: dt.date) -> int:
    """Monday-to-Friday days strictly between `after` and `before`: business days a file dated
    `before` would not hold when the last known rate is of `after` (TARGET holidays count too:
    at worst they cost one more, small request)."""
    days = (before - after).days - 1
    if days <= 0:
        return 0
    weeks, rest = divmod(days, 7)
    first = after.weekday() + 1
    return weeks * 5 + sum(1 for i in range(rest) if (first + i) % 7 < 5)


@dataclass
class Feed:
    """The ECB's files under `base_url`, fetched with `transport` (tests: a sandbox in-process).

    Attributes:
        base_url: the folder of the files (`[sources.ecb] base_url`).
        transport: an httpx transport for every request; None for the network.
        timeout: seconds one request may take.
        attempts: tries per file; a 5xx or a connection error is tried again after `pause`.
        pause: seconds between tries.
    """

    base_url: str
    transport: httpx.BaseTransport | None = None
    timeout: float = TIMEOUT
    attempts: int = 2
    pause: float = 1.0

    def get(self, name: str) -> bytes:
        """The body of the file `name`.

        Raises:
            FeedUnavailable: unreachable after every try, or an error status.
        """
        url = f"{self.base_url.rstrip('/')}/{name}"
        problem = ""
        headers = {"User-Agent": USER_AGENT}
        with httpx.Client(transport=self.transport, timeout=self.timeout, headers=headers) as client:
            for attempt in range(1, self.attempts + 1):
                try:
                    response = client.get(url, follow_redirects=True)
                except httpx.HTTPError as exc:
                    problem = f"unreachable ({type(exc).__name__}: {exc})"
                else:
                    if response.status_code == 200:
                        return response.content
                    problem = f"HTTP {response.status_code}: {excerpt(response.text, 120)}"
                    if response.status_code < 500:
                        break
                if attempt < self.attempts:
                    interruptible_sleep(self.pause)  # a stop request ends the wait
        raise FeedUnavailable(redact(f"{url}: {problem}"))

    def _xml(self, name: str) -> list[Rate]:
        try:
            return list(xml_rates(io.BytesIO(self.get(name))))
        except RateFormatError as exc:
            raise FeedUnavailable(f"{self.base_url.rstrip('/')}/{name}: {exc}") from None

    def _history(self, after: dt.date | None) -> Iterator[Rate]:
        body = io.BytesIO(self.get(HISTORY_ZIP))
        try:
            yield from zip_rates(body, after)
        except (RateFormatError, KeyError, OSError) as exc:  # zipfile.BadZipFile is an OSError
            raise FeedUnavailable(f"{self.base_url.rstrip('/')}/{HISTORY_ZIP}: {exc}") from None

    def new_rates(self, newest: dt.date | None, today: dt.date) -> tuple[str, Iterator[Rate]]:
        """The file read and its rates of the days after `newest` (every day when None), in the
        file's order (newest first). The iterator may raise `FeedUnavailable` while it runs (the
        full history is fetched and read lazily): a caller keeps nothing of a file until it
        has read it to the end.

        Raises:
            FeedUnavailable: a file could not be fetched or read.
        """
        if newest is None or (today - newest).days > NINETY_DAYS_REACH:
            return HISTORY_ZIP, self._history(newest)
        daily = self._xml(DAILY_XML)
        published = max((r.rate_date for r in daily), default=newest)
        if weekdays_between(newest, published) == 0:
            return DAILY_XML, iter([r for r in daily if r.rate_date > newest])
        recent = self._xml(NINETY_DAYS_XML)
        oldest = min((r.rate_date for r in recent), default=published)
        if weekdays_between(newest, oldest) > 0:
            log.info("the ECB's 90-day file starts on %s, after %s: reading the full history", oldest, newest)
            return HISTORY_ZIP, self._history(newest)
        return NINETY_DAYS_XML, iter([r for r in recent if r.rate_date > newest])
