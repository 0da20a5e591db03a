"""What one account's run listed, kept to find the rows deleted upstream
(docs/canonical-model.md, "Deletions").

None of the APIs lists deleted records: a deletion shows only as a record that a complete
listing of its scope no longer holds. The driver notes, per canonical table, every id its
listings held and which scopes it read completely (every page of one client's documents, of
the account's documents or of the account's clients, stable while read, not narrowed by a
filter and not read incrementally). Once the run's rows are loaded, `pipelines/deletions.py`
compares this with the warehouse: rows of a complete scope that no listing held get
`deleted_at`, rows marked deleted that a listing holds again are cleared.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from sources.shared.model import CLIENTS, INVOICES

ACCOUNT: None = None
"""The scope of an account-wide listing (a client's id names a per-client listing's scope)."""


@dataclass
class Listed:
    """What one account's run listed.

    Attributes:
        provider, account: whose rows.
        at: when the run started listing: the `deleted_at` of what it finds deleted.
        ids: canonical table → every record id a listing held, complete or not.
        scopes: canonical table → the scopes read completely: `ACCOUNT`, or client ids.
        unlisted: client id → why its documents could not be listed (it is read again next run,
            and nothing of it is taken as deleted).
        swept: whether the run swept an incremental listing in full (so the sweep is due again
            when its deletions are refused).
        by_client: documents are listed per client. The documents of a client that a complete
            clients listing no longer holds can no longer be listed at all: they are gone with
            their client, so they lie in a complete scope too.
    """

    provider: str
    account: str
    at: dt.datetime
    ids: dict[str, set[str]] = field(default_factory=dict)
    scopes: dict[str, set[str | None]] = field(default_factory=dict)
    unlisted: dict[str, str] = field(default_factory=dict)
    swept: bool = False
    by_client: bool = False

    def add(self, table: str, ids: Iterable[str], scope: str | None, complete: bool) -> None:
        """Note the ids one listing of `scope` held, and whether it was read completely."""
        found = self.ids.get(table)
        if found is None:  # the first listing of the table: its own set, not a copy
            self.ids[table] = ids if isinstance(ids, set) else set(ids)
        else:
            found.update(ids)
        scopes = self.scopes.setdefault(table, set())
        if complete:
            scopes.add(scope)

    def covers(self, table: str, client_id: str | None) -> bool:
        """Whether a row of `table` (of client `client_id`) lies in a scope read completely."""
        scopes = self.scopes.get(table, set())
        if ACCOUNT in scopes or (client_id is not None and client_id in scopes):
            return True
        return (
            table == INVOICES
            and self.by_client
            and client_id is not None
            and ACCOUNT in self.scopes.get(CLIENTS, set())
            and not self.holds(CLIENTS, client_id)
        )

    def holds(self, table: str, record_id: str) -> bool:
        """Whether some listing of this run held the record."""
        return record_id in self.ids.get(table, set())
