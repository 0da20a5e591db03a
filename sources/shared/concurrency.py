"""Fetch many small listings at once, a bounded number in flight.

A thousand clients must not cost a thousand round trips in a row: their listings run on a
thread pool while the caller consumes results as they complete. The rate budget is shared
by all threads, so parallelism never exceeds what the provider allows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def bounded_map(fn: Callable[[T], R], inputs: Iterable[T], workers: int) -> Iterator[tuple[T, R]]:
    """Yield `(input, fn(input))` as each call completes, at most `workers` running and
    `2 * workers` submitted at any time, so memory stays flat however many inputs there are.

    An exception raised by `fn` is re-raised here, in the consuming thread, once every result
    completed with it has been yielded, after the calls in flight are cancelled or finished.
    """
    workers = max(1, workers)
    iterator = iter(inputs)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="billing-fetch") as pool:
        pending: dict[Future[R], T] = {}
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < 2 * workers:
                    try:
                        item = next(iterator)
                    except StopIteration:
                        exhausted = True
                        break
                    pending[pool.submit(fn, item)] = item
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                # In the order they were submitted, what succeeded before what failed: a failure
                # never drops a result already in hand (the caller may commit it first).
                ready = sorted((f for f in pending if f in done), key=lambda f: f.exception() is not None)
                for future in ready:
                    item = pending.pop(future)
                    yield item, future.result()
        finally:
            for future in pending:
                future.cancel()
