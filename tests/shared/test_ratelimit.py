import threading

from sources.shared.concurrency import bounded_map
from sources.shared.ratelimit import RateBudget


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_requests_are_spaced_to_stay_within_the_budget():
    clock = FakeClock()
    budget = RateBudget(780, clock=clock.time, sleep=clock.sleep)
    for _ in range(1561):
        budget.acquire()
    # 1,561 requests at 780 per minute: the first is free, the other 1,560 take two minutes.
    assert abs(clock.now - 120.0) < 1e-6


def test_any_sixty_second_window_holds_at_most_the_budget():
    clock = FakeClock()
    budget = RateBudget(600, burst=5, clock=clock.time, sleep=clock.sleep)
    stamps = []
    for _ in range(2000):
        budget.acquire()
        stamps.append(clock.now)
    worst = max(sum(1 for t in stamps if start <= t < start + 60) for start in stamps)
    assert worst <= 600 + 5


def test_no_budget_means_no_wait():
    clock = FakeClock()
    budget = RateBudget(None, clock=clock.time, sleep=clock.sleep)
    for _ in range(100):
        budget.acquire()
    assert clock.now == 0


def test_bounded_map_runs_in_parallel_but_never_more_than_asked():
    running, peak = 0, 0
    lock = threading.Lock()
    release = threading.Event()

    def work(n):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release.wait(0.05)
        with lock:
            running -= 1
        return n * n

    results = dict(bounded_map(work, range(40), workers=4))
    assert results == {n: n * n for n in range(40)}
    assert peak == 4
