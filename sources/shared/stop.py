"""Stopping a run cleanly: a stop request is noted, and everything that waits or loops checks it.

A SIGINT or SIGTERM does not raise where it lands (in the middle of a commit, of a query, of a
garbage collector's callback): the command line's handler calls `request`, and the run stops at
its next safe point, where `check` raises `Stopped`. Every wait (a retry's pause, a page queued
by a listing in flight) wakes at once; every page of a listing, every step of the run checks.
The request stays until the process ends, so no step can lose it (a step that completes
before it checks is followed by another check).
"""

from __future__ import annotations

import threading

_requested: list[int] = []
_event = threading.Event()


class Stopped(KeyboardInterrupt):
    """The run was stopped by a signal (SIGINT 2, SIGTERM 15)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"signal {signum}")


def request(signum: int) -> None:
    """Ask the run to stop (from a signal handler: no lock, no logging)."""
    if not _requested:
        _requested.append(signum)
    _event.set()


def requested() -> int | None:
    """The signal the run was asked to stop by, or None."""
    return _requested[0] if _requested else None


def check() -> None:
    """Raise `Stopped` when the run was asked to stop (a safe point)."""
    if _requested:
        raise Stopped(_requested[0])


def sleep(seconds: float) -> None:
    """Wait `seconds`, or raise `Stopped` as soon as the run is asked to stop."""
    if _event.wait(seconds):
        check()


def clear() -> None:
    """Forget a stop request (a new run in the same process: the tests' in-process runs)."""
    _requested.clear()
    _event.clear()
