"""Fetch many small listings at once, a bounded number in flight.

A thousand clients must not cost a thousand round trips in a row: their listings run on a
thread pool while the caller consumes results as they complete. The rate budget is shared
by all threads, so parallelism never exceeds what the provider allows.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from sources.shared import stop

T = TypeVar("T")
R = TypeVar("R")


_DONE = object()


def bounded_streams(
    fn: Callable[[T], Iterator[R]], inputs: Iterable[T], workers: int, ahead: int = 2
) -> Generator[tuple[T, Iterator[R]], None, None]:
    """Yield `(input, items)` for each input in order, `items` being `fn(input)`'s items as they
    come: up to `workers` inputs are read at once, each holding at most `ahead` items not yet
    consumed, so memory stays flat however long each stream is (a client's listing of a
    thousand pages is never held whole).

    An exception raised by `fn` is raised by its `items` after the items that came before it.
    Closing this iterator (or an error in the consumer) stops every stream in flight.
    """
    workers = max(1, workers)
    iterator = iter(inputs)
    closed = threading.Event()

    def run(item: T, out: queue.Queue[Any]) -> None:
        def put(value: Any) -> bool:
            while not closed.is_set():
                try:
                    out.put(value, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            for value in fn(item):
                if not put((value, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, in its thread
            put((_DONE, exc))

    def drain(out: queue.Queue[Any]) -> Iterator[R]:
        while True:
            try:
                value, error = out.get(timeout=0.2)
            except queue.Empty:
                stop.check()  # a stop request ends the wait for the next item
                continue
            if value is _DONE:
                if error is not None:
                    raise error
                return
            yield value

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="billing-fetch") as pool:
        pending: deque[tuple[T, queue.Queue[Any]]] = deque()
        try:
            while True:
                while len(pending) < workers:
                    try:
                        item = next(iterator)
                    except StopIteration:
                        break
                    out: queue.Queue[Any] = queue.Queue(maxsize=max(1, ahead))
                    pool.submit(run, item, out)
                    pending.append((item, out))
                if not pending:
                    return
                item, out = pending.popleft()
                yield item, drain(out)
        finally:
            closed.set()


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
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                if not done:
                    stop.check()  # a stop request ends the wait for the listings in flight
                    continue
                # In the order they were submitted, what succeeded before what failed: a failure
                # never drops a result already in hand (the caller may commit it first).
                ready = sorted((f for f in pending if f in done), key=lambda f: f.exception() is not None)
                for future in ready:
                    item = pending.pop(future)
                    yield item, future.result()
        finally:
            for future in pending:
                future.cancel()
