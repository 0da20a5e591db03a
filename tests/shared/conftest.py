"""Fixtures of the tests that run the shared driver at its own seam (tests/shared/driving.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from sources.shared import driver
from sources.shared import http as shared_http
from tests.shared.driving import Clock


@pytest.fixture
def quick_retries() -> Iterator[shared_http.RetryPolicy]:
    """A request is tried twice without waiting (a failure that outlives its retries comes fast)."""
    saved = shared_http.default_policy()
    policy = shared_http.RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0, jitter=0.0)
    shared_http.configure(policy)
    try:
        yield policy
    finally:
        shared_http.configure(saved)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The driver's notion of now (`time.time` in sources/shared/driver.py), starting at the real now."""
    found = Clock(float(int(time.time())))
    monkeypatch.setattr(driver, "time", found.module())
    return found
