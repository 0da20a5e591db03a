"""The invoice cursor: ask the API only for what changed, with an overlap, and rewrite nothing twice.

Fohlio filters listings with `updated_since` (Unix seconds). Each run asks from the highest
`updated_at` already loaded minus an overlap window, because a change committed while the
previous run was listing can carry an `updated_at` slightly below the mark it ended with.

The overlap brings back invoices already loaded. The shared `UpdateCursor` alone would also
drop a late change inside the window (its timestamp is below the mark), so this cursor also
remembers the `updated_at` of every invoice inside the window: an invoice there is written
again only if its timestamp differs from the one already loaded. When the API ignores
`updated_since` and lists everything, the same test keeps the result exact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import MutableMapping
from typing import Any

from sources.shared.cursor import UpdateCursor
from sources.shared.values import parse_timestamp


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

    def commit(self) -> None:
        """Store the new mark and the window below it; call once the listing is complete."""
        self._cursor.commit()
        mark = UpdateCursor(self._state, self._key).last_value
        if mark is None:
            return
        floor = mark - self.overlap
        merged = {**self._window, **self._seen}
        self._state[self._window_key] = {
            record_id: stamp.isoformat() for record_id, stamp in sorted(merged.items()) if stamp >= floor
        }
