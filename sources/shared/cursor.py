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
from typing import Any

from sources.shared.values import parse_timestamp


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

    def commit(self) -> None:
        """Write the new mark into state; call once the listing has been read to the end."""
        if self._max is None:
            return
        self._state[self._key] = {
            "last_value": self._max.isoformat(),
            "ids_at_last_value": sorted(self._max_ids),
        }
