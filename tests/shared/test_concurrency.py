"""`bounded_map`: bounded fan-out whose failure never drops a result already in hand."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from sources.shared.concurrency import bounded_map


class Refused(Exception):
    pass


def test_results_completed_with_a_failure_are_yielded_before_it_is_raised():
    finished = {name: threading.Event() for name in ("bad", "good")}

    def fetch(name: str) -> str:
        finished[name].set()
        if name == "bad":
            raise Refused(name)
        return name.upper()

    def inputs() -> Iterator[str]:
        yield "bad"  # submitted first, fails
        yield "good"
        # Hold the submissions until both calls are over, so that one wait sees both done.
        for event in finished.values():
            event.wait(5)
        time.sleep(0.2)

    got = []
    with pytest.raises(Refused):
        for item, result in bounded_map(fetch, inputs(), workers=2):
            got.append((item, result))
    assert got == [("good", "GOOD")]


def test_results_come_in_the_order_they_complete_and_every_input_once():
    def square(n: int) -> int:
        time.sleep(0.01 * (n % 3))
        return n * n

    results = dict(bounded_map(square, range(20), workers=3))
    assert results == {n: n * n for n in range(20)}
