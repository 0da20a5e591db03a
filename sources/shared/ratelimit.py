"""A proactive request budget, shared by every thread that talks to one provider account.

Providers publish budgets per minute (InvoiceXpress: 780 requests per minute per account).
Rather than spend them in a burst and then eat 429s, requests are spaced evenly: a token bucket
refilled at `requests_per_minute / 60` per second with a small burst allowance, so that any
window of sixty seconds holds at most the budget.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateBudget:
    """Thread-safe token bucket.

    Args:
        requests_per_minute: the budget; `None` or 0 disables the limit.
        burst: how many requests may go out back to back after an idle period. The bucket
            starts with this many tokens; keeping it small keeps every sixty-second window
            under the budget.
        clock, sleep: injectable for tests.
    """

    def __init__(
        self,
        requests_per_minute: float | None,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = (requests_per_minute or 0) / 60.0
        self.capacity = float(max(1, burst))
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self) -> None:
        """Block until one request may be sent."""
        if not self.enabled:
            return
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
