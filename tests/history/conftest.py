"""The clocks of a history test: the runs' (`pipelines.run.utc_now`: a run's start, its history's
`valid_from`, `pipeline_runs`' times) and the sandboxes' (`sandbox.framework.utc_now`), set by the
test so that runs can be dated days apart."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines import run
from sandbox import framework


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, now: dt.datetime) -> None:
        self.now = now
        monkeypatch.setattr(run, "utc_now", lambda: self.now)
        monkeypatch.setattr(framework, "utc_now", lambda: self.now)

    def days_ago(self, days: float) -> dt.datetime:
        """Set the clocks `days` before the real now (to the microsecond, as a run's start is kept)."""
        return self.at(dt.datetime.now(dt.UTC) - dt.timedelta(days=days))

    def at(self, when: dt.datetime) -> dt.datetime:
        """Set the clocks to `when` (UTC), which must not be in the future."""
        assert when <= dt.datetime.now(dt.UTC), when
        self.now = when
        return when


def month_start(months_back: int) -> dt.date:
    """The first day of the month `months_back` months before the current one (UTC)."""
    month = dt.datetime.now(dt.UTC).date().replace(day=1)
    for _ in range(months_back):
        month = (month - dt.timedelta(days=1)).replace(day=1)
    return month


def utc(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, 17, 123456, tzinfo=dt.UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, dt.datetime.now(dt.UTC))
