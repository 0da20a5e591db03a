"""An update cursor kept in dlt state: write only what changed since the last successful run.

dlt commits source state together with the load package it belongs to, so the cursor moves
only when the rows it covers are loaded: an interrupted run leaves the cursor where it was and
the next run sees the same changes again.

The cursor keeps the highest update timestamp seen and the ids that carry exactly that
timestamp, so an invoice updated in the same second as the previous high-water mark is neither
missed nor written twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import MutableMapping
from typing import Any, Protocol

from sources.shared.values import parse_timestamp


class Tracker(Protocol):
    """Decides, record by record, what a listing must write, and keeps its mark in state."""

    def is_changed(self, record_id: str, updated_at: dt.datetime | None) -> bool: ...

    def observe(self, record_id: str, updated_at: dt.datetime | None) -> None: ...

    def hold(self, updated_at: dt.datetime | None) -> None: ...

    def commit(self) -> None: ...

    def pending(self) -> dict[str, Any] | None: ...


class UpdateCursor:
    """High-water mark on an `updated_at`-like timestamp, stored under `state[key]`.

    Args:
        state: a mutable mapping that dlt persists, typically
            `dlt.current.source_state().setdefault(account, {})`.
        key: the name of this cursor inside `state`.
    """

    def __init__(self, state: MutableMapping[str, Any], key: str = "updated_at") -> None:
        self._state = state
        self._key = key
        stored = state.get(key) or {}
        self.last_value: dt.datetime | None = parse_timestamp(stored.get("last_value"))
        self._boundary: set[str] = set(stored.get("ids_at_last_value") or [])
        self._max: dt.datetime | None = self.last_value
        self._max_ids: set[str] = set(self._boundary)

    def is_changed(self, record_id: str, updated_at: dt.datetime | None) -> bool:
        """Whether a record must be (re)written: newer than the mark, or new at the mark.

        A record with no timestamp is always written: without one nothing proves it unchanged.
        """
        if updated_at is None or self.last_value is None:
            return True
        if updated_at > self.last_value:
            return True
        return updated_at == self.last_value and record_id not in self._boundary

    def observe(self, record_id: str, updated_at: dt.datetime | None) -> None:
        """Account for a record seen in this run (call for every record, changed or not)."""
        if updated_at is None:
            return
        if self._max is None or updated_at > self._max:
            self._max, self._max_ids = updated_at, {record_id}
        elif updated_at == self._max:
            self._max_ids.add(record_id)

    def hold(self, updated_at: dt.datetime | None) -> None:
        """Nothing to hold: every page is read on every run, and a record that could not be
        mapped is retried by id (`unmapped_records`), whatever the mark."""

    def cap(self, ceiling: dt.datetime) -> None:
        """Let the new mark go no further than `ceiling` (never below the stored mark)."""
        if self._max is not None and self._max > ceiling:
            floor = self.last_value
            self._max = ceiling if floor is None or ceiling > floor else floor
            self._max_ids = set() if self._max != floor else set(self._boundary)

    def commit(self) -> None:
        """Write the new mark into state; call once the listing has been read to the end."""
        pending = self.pending()
        if pending is not None:
            self._state[self._key] = pending

    def pending(self) -> dict[str, Any] | None:
        """The mark `commit` would write now (None when nothing has a timestamp yet)."""
        if self._max is None:
            return None
        return {"last_value": self._max.isoformat(), "ids_at_last_value": sorted(self._max_ids)}


# An API that filters listings with `updated_since` is asked, on each run, from the highest
# `updated_at` already loaded minus an overlap window, because a change committed while the
# previous run was listing can carry an `updated_at` slightly below the mark it ended with.
# The overlap brings back records already loaded; `UpdateCursor` alone would also drop a late
# change inside the window (its timestamp is below the mark), so `OverlapCursor` also remembers
# the `updated_at` of every record inside the window: a record there is written again only if
# its timestamp differs from the one already loaded. When the API ignores the filter and lists
# everything, the same test keeps the result exact.


class OverlapCursor:
    """An `UpdateCursor` plus the invoices seen inside the overlap window.

    Args:
        state: the dlt source state of the account.
        key: the cursor's name in `state` (one per project filter, so that changing the filter
            never hides invoices the previous filter excluded).
        overlap: how far before the mark the next run asks again.
    """

    def __init__(self, state: MutableMapping[str, Any], key: str, overlap: dt.timedelta) -> None:
        self._state = state
        self._key = key
        self._window_key = f"{key}:window"
        self.overlap = overlap
        self._cursor = UpdateCursor(state, key)
        self._window: dict[str, dt.datetime] = {}
        for record_id, stamp in (state.get(self._window_key) or {}).items():
            parsed = parse_timestamp(stamp)
            if parsed is not None:
                self._window[record_id] = parsed
        self._seen: dict[str, dt.datetime] = {}
        self._held: dt.datetime | None = None
        self._frozen = False

    @property
    def last_value(self) -> dt.datetime | None:
        """The highest `updated_at` loaded by previous runs."""
        return self._cursor.last_value

    @property
    def since(self) -> int | None:
        """The `updated_since` to send (Unix seconds, rounded down), or None on a first run."""
        if self.last_value is None:
            return None
        return int((self.last_value - self.overlap).timestamp() // 1)

    def is_changed(self, record_id: str, updated_at: dt.datetime | None) -> bool:
        """Whether an invoice must be written: past the mark, or in the window at a new timestamp."""
        if self._cursor.is_changed(record_id, updated_at):
            return True
        last = self.last_value
        if updated_at is None or last is None or updated_at < last - self.overlap:
            return False
        return self._window.get(record_id) != updated_at

    def observe(self, record_id: str, updated_at: dt.datetime | None) -> None:
        """Account for an invoice listed in this run, written or not."""
        self._cursor.observe(record_id, updated_at)
        if updated_at is not None:
            self._seen[record_id] = updated_at

    def hold(self, updated_at: dt.datetime | None) -> None:
        """Keep the next mark below a record that could not be mapped, so that the next run asks
        for it again (a record without a readable timestamp keeps the mark where it is)."""
        if updated_at is None:
            self._frozen = True
        elif self._held is None or updated_at < self._held:
            self._held = updated_at

    def pending(self) -> dict[str, Any] | None:
        """The mark `commit` would write now, before any hold."""
        return self._cursor.pending()

    def commit(self) -> None:
        """Store the new mark and the window below it; call once the listing is complete."""
        if self._frozen:
            return
        if self._held is not None:
            self._cursor.cap(self._held - dt.timedelta(microseconds=1))
        self._cursor.commit()
        mark = UpdateCursor(self._state, self._key).last_value
        if mark is None:
            return
        floor = mark - self.overlap
        merged = {**self._window, **self._seen}
        self._state[self._window_key] = {
            record_id: stamp.isoformat() for record_id, stamp in sorted(merged.items()) if stamp >= floor
        }
