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


def test_streams_come_in_order_each_holding_few_items_ahead() -> None:
    import threading

    from sources.shared.concurrency import bounded_streams

    produced: dict[int, int] = {}
    lock = threading.Lock()

    def items(n: int):
        for i in range(50):
            with lock:
                produced[n] = produced.get(n, 0) + 1
            yield (n, i)

    seen = []
    for n, stream in bounded_streams(items, range(6), workers=3, ahead=2):
        first = next(stream)
        # The other streams in flight wait after a few items: none runs far ahead of the reader.
        with lock:
            assert all(count <= 2 + 2 for key, count in produced.items() if key != n and key > n)
        seen.extend([first, *stream])
    assert seen == [(n, i) for n in range(6) for i in range(50)]


def test_a_stream_error_comes_after_its_items_and_closing_stops_the_others() -> None:
    import time

    from sources.shared.concurrency import bounded_streams

    def items(n: int):
        yield n
        if n == 1:
            raise ValueError("listing 1 failed")
        while True:  # endless: only closing the streams ends it
            yield n
            time.sleep(0.001)

    streams = bounded_streams(items, range(3), workers=3)
    n, first = next(streams)
    assert (n, next(first)) == (0, 0)
    n, second = next(streams)
    assert next(second) == 1
    with pytest.raises(ValueError, match="listing 1 failed"):
        next(second)
    streams.close()  # the endless streams in flight end with it
