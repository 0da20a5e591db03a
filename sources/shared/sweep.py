"""Commit a long run of per-client listings in batches, and resume an interrupted sweep.

A provider whose documents are listed per client (one listing per client, each complete on its
own) is read as a *sweep* over the account's clients. With `batch_clients` set (docs/operations.md,
"Progress survives failures"), every `batch_clients` finished clients the driver flushes their rows, records
them in the sweep's state and yields `BATCH_END`; the pipeline ends the extract there, so dlt
commits those rows and that state together in their own load package (dlt adds the source state
to a package at the end of its extract), normalizes and loads it, then resumes the same stream
for the next batch. A failure or kill keeps every batch loaded before it.

The sweep's state (`state["sweep"]` of the account): when it started, a fingerprint of the
listing's request (a changed filter starts a new sweep: clients done under another filter are not
done under this one), the clients done, whether every listing read so far was stable, and, for
an update cursor, the mark the sweep's first run would move it to. The next run lists the
clients again (cheap: a few pages) and lists documents only for the clients not done; when the
last client is done the sweep is dropped and the next run starts a new one.

An update cursor over per-client listings is one mark for the whole account, so it can only move
once the sweep is complete: moved after a batch, the next run would take the other clients'
changes below the mark for unchanged. When a sweep spans several runs, the mark it moves to is
the one its *first* run saw: a client finished in that run may change while the sweep waits, and
that change is newer than anything the first run saw, but not necessarily newer than what a
later run sees on other clients. Records a later run wrote above that mark are written once more
by the next sweep, with the same values.

Listings of the whole account (one listing, not per client) are not batched: with offset paging
over an order that is not by update (docs/providers.md), neither a client-side cursor nor a
server-side `updated_since` mark may move before the whole listing is read, and an offset cannot
be resumed soundly, so a batch would only commit rows the next run reads again anyway.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any

from sources.shared.cursor import Tracker, UpdateCursor
from sources.shared.values import dumps

STATE_KEY = "sweep"

# A child of the run's logger: a resumed sweep and each committed batch are said by default.
log = logging.getLogger("billing.run.sweep")


class _BatchEnd:
    """The marker the driver yields when a batch is complete (never an item for dlt)."""

    def __repr__(self) -> str:
        return "BATCH_END"


BATCH_END: Any = _BatchEnd()


def fingerprint(*parts: Any) -> str:
    """A short stable hash of what a listing asks for (path, parameters, body)."""
    return hashlib.sha256(dumps(list(parts)).encode()).hexdigest()[:16]


class Sweep:
    """One account's sweep of per-client listings, kept in `state["sweep"]`.

    Args:
        state: the account's dlt source state.
        batch_size: clients per batch (at least 1).
        listing: the listing's fingerprint (see `fingerprint`).
        name: the account as log lines name it (`invoicexpress [acme]`).
    """

    def __init__(self, state: MutableMapping[str, Any], batch_size: int, listing: str, name: str) -> None:
        self.batch_size, self.name = max(1, batch_size), name
        stored = state.get(STATE_KEY)
        if isinstance(stored, dict) and stored.get("fingerprint") == listing and stored.get("done"):
            self.resumed = True
            self._stored = dict(stored)
        else:
            self.resumed = False
            now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
            self._stored = {"started_at": now, "fingerprint": listing, "done": [], "stable": True}
        self._done: list[str] = list(self._stored.get("done") or [])
        self._batch: list[str] = []
        self._left = 0
        if self.resumed:
            log.info(
                "%s: resuming the sweep started %s: %d client(s) already done",
                name,
                self.started_at,
                len(self._done),
            )

    @property
    def started_at(self) -> str:
        return str(self._stored["started_at"])

    @property
    def stable(self) -> bool:
        """Whether every listing an earlier run of this sweep read stayed stable."""
        return bool(self._stored.get("stable", True))

    def remaining(self, targets: Sequence[str]) -> list[str]:
        """The clients of `targets` this sweep has not finished, in their order, and those it
        finished whose deletions are not marked yet (a run stopped after committing their batch:
        they are listed again, so that the deletions their listings show are not lost)."""
        done, unmarked = set(self._done), set(self._stored.get("unmarked") or [])
        todo = [t for t in targets if t not in done or t in unmarked]
        self._left = len(todo)
        return todo

    def finished(self, client_id: str, listed: bool = True) -> bool:
        """Count `client_id` as finished, or, when its documents could not be `listed`, as tried
        and left to the next run (never done); True when its batch is full and clients remain."""
        if listed:
            self._batch.append(client_id)
        self._left -= 1
        return len(self._batch) >= self.batch_size and self._left > 0

    def commit_batch(self, state: MutableMapping[str, Any], cursor: Any, stable: bool) -> list[str]:
        """Record the batch's clients as done in `state` (committed with the batch's rows);
        returns them. In the sweep's first run, also the mark an update cursor would move to."""
        batch, self._batch = self._batch, []
        self._done.extend(c for c in batch if c not in self._done)
        self._stored["done"] = list(self._done)
        # Their deletions are marked once the run's rows are loaded (`deletions_marked`).
        unmarked = list(self._stored.get("unmarked") or [])
        self._stored["unmarked"] = unmarked + [c for c in batch if c not in unmarked]
        self._stored["stable"] = self.stable and stable
        if not self.resumed and isinstance(cursor, UpdateCursor):
            self._stored["mark"] = cursor.pending()
        state[STATE_KEY] = dict(self._stored)
        log.info("%s: committing a batch of %d client(s) (%d done)", self.name, len(batch), len(self._done))
        return batch

    def commit_cursor(self, state: MutableMapping[str, Any], cursor: Tracker, key: str) -> None:
        """Move the update cursor once the sweep is complete: as it would move after one run, or,
        for a sweep that spanned several runs, to the mark its first run saw (module docstring)."""
        if not self.resumed:
            cursor.commit()
        elif self._stored.get("mark"):
            state[key] = self._stored["mark"]

    def complete(self, state: MutableMapping[str, Any]) -> None:
        """The sweep is done: the next run starts a new one."""
        state.pop(STATE_KEY, None)


def unmarked(account_state: Mapping[str, Any]) -> set[str]:
    """The clients an open sweep committed whose deletions are not marked yet."""
    stored = account_state.get(STATE_KEY)
    return set(stored.get("unmarked") or []) if isinstance(stored, dict) else set()


def deletions_marked(account_state: MutableMapping[str, Any], clients: set[str]) -> bool:
    """The deletions the listings of `clients` showed are marked: an open sweep need not list them
    again; whether anything changed."""
    stored = account_state.get(STATE_KEY)
    if not isinstance(stored, dict) or not stored.get("unmarked"):
        return False
    left = [c for c in stored["unmarked"] if c not in clients]
    changed = len(left) != len(stored["unmarked"])
    account_state[STATE_KEY] = {**stored, "unmarked": left}
    return changed


def split(items: Iterator[Any]) -> Batches:
    """The batches of one account's item stream (see `Batches`)."""
    return Batches(items)


class Batches:
    """One account's item stream, cut at `BATCH_END` into batches, one extract each.

    `batch()` yields the items of the next batch and returns at its `BATCH_END`; the stream
    stays suspended there (its HTTP client, listings and counters alive) until the next
    `batch()`. `finished` turns True when the stream ended. `close()` ends the stream early
    (its HTTP client closed, listings in flight cancelled).
    """

    def __init__(self, items: Iterator[Any]) -> None:
        self._items = items
        self.finished = False
        self.loaded = 0  # batches the caller loaded

    def batch(self) -> Iterator[Any]:
        for item in self._items:
            if item is BATCH_END:
                return
            yield item
        self.finished = True

    def close(self) -> None:
        self.finished = True
        close = getattr(self._items, "close", None)
        if close is not None:
            close()
