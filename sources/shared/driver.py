"""One driver for every provider: loads one provider account from its declaration.

A run of one account, whatever the provider:

1. build the HTTP client from the declared auth scheme, within the account's request budget;
2. list the account's clients (every page; incrementally where the API allows), learn the
   account's label from them when the API is the only one that knows it, map and write them;
3. list the documents: each client's listing, several clients in flight at once, or the
   account's one listing; a client that disappeared (404) is reported and skipped;
4. per page: decide from the cursor which records changed, map those a page at a time, write
   what mapped and report what did not (with its reason and id, never silently);
5. move the cursors only when their listing was read completely and stayed stable;
6. note what every listing held and which scopes were read completely, so that rows deleted
   upstream can be marked once the run is loaded (`sources.shared.deletions`); an incremental
   listing is swept in full every `reconcile_every`, and a client whose documents could not be
   listed after retries is skipped, never taken as deleted.

dlt commits the source state (the cursors) in the same load package as the rows they cover,
so an interrupted run moves no cursor and the next run sees the same changes again. With
`Account.batch_clients`, per-client listings are committed in batches of clients and an
interrupted sweep resumes where it stopped (sources/shared/sweep.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import dlt
import httpx
import pyarrow as pa

from sources.shared.auth import Auth, ClientCredentialsAuth, HeaderAuth, QueryParamAuth
from sources.shared.concurrency import bounded_map
from sources.shared.cursor import OverlapCursor, UpdateCursor
from sources.shared.declaration import (
    Api,
    ClientCredentials,
    Context,
    FullListing,
    HeaderKey,
    ListedSince,
    Listing,
    QueryKey,
    UpdatedAt,
    UpdatedSince,
    dig,
)
from sources.shared.deletions import ACCOUNT, Listed
from sources.shared.errors import BillingError, ConfigurationError, HttpStatusError, NotFoundError, UnreachableError
from sources.shared.http import ApiClient
from sources.shared.inputs import remember_context, remember_lookup, remember_options
from sources.shared.model import (
    CLIENTS,
    INVOICES,
    TOMBSTONE,
    TableWriter,
    total_mismatches,
    unfit,
    write_invoice,
)
from sources.shared.paginators import PageNumberPaginator, Request, paginate, paginate_numbered, paginator_for
from sources.shared.provider import config_hint
from sources.shared.ratelimit import RateBudget
from sources.shared.redact import register_secret
from sources.shared.stats import RunStats, start_run
from sources.shared.sweep import BATCH_END, Sweep, fingerprint
from sources.shared.values import ValueProblem, dumps, to_text

log = logging.getLogger("billing.driver")
# A child of the run's logger: said by default, like a committed batch.
run_log = logging.getLogger("billing.run.load")

SWEPT_AT = "swept_at"
# A sweep read in full whose deletions are not marked yet (README, "Deletions"): committed with the
# sweep's rows, moved to SWEPT_AT only once the marking is done (`sweeps_marked`), so a run killed
# between its load and the marking sweeps again next run instead of waiting `reconcile_every`.
SWEPT_PENDING = "swept_pending"
"""Where an account's state keeps, per incremental listing, when it was last swept in full."""
DEFAULT_RECONCILE_EVERY = dt.timedelta(days=7)


@dataclass(frozen=True)
class Account:
    """One provider account as configured: what the declaration leaves to the user.

    Attributes:
        label: the `account` value of its rows; None where the API tells it (see
            `Mappers.account_from`).
        base_url: the API root.
        secrets: the declared secrets by configuration key.
        token_url: the OAuth token endpoint, for `ClientCredentials`.
        auth_scheme: overrides a `HeaderKey`'s scheme word ("" sends the raw key).
        requests_per_minute: the proactive budget; None uses the declaration's.
        concurrency: listings in flight; None uses the declaration's.
        only_clients: load only these clients' documents (ids as text).
        options: the account's mapping options, handed to mappers in `Context.options`.
        transport: an httpx transport for every request (an in-process sandbox in tests).
        timeout: seconds one attempt of a request may take to read; None (default) takes the
            pipeline's `http_timeout` (see `sources.shared.http.RetryPolicy`).
        reconcile_every: how often an incremental listing is read in full, without its change
            filter, to find what was deleted (docs/canonical-model.md, "Deletions").
        batch_clients: commit per-client listings every this many clients (`account_batches`);
            None commits the account's run once.
        holds_no_rows: `holds_no_rows(provider, account)` asks the destination whether it holds
            no row of the account yet; each extract it answers True for appends instead of
            merging (`TableWriter`, "First loads append"). None: every extract merges (as when
            several accounts share one extract, whose tables have one write disposition).
    """

    label: str | None
    base_url: str
    secrets: Mapping[str, str]
    token_url: str | None = None
    auth_scheme: str | None = None
    requests_per_minute: float | None = None
    concurrency: int | None = None
    only_clients: Sequence[str] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    transport: httpx.BaseTransport | None = None
    timeout: float | None = None
    reconcile_every: dt.timedelta = DEFAULT_RECONCILE_EVERY
    batch_clients: int | None = None
    holds_no_rows: Callable[[str, str], bool] | None = None


def billing_resource(api: Api, account: Account) -> Any:
    """The dlt resource that loads one account into the canonical tables."""
    return dlt.resource(run_account, name=f"{api.provider}_billing")(api, account)


def run_account(api: Api, account: Account) -> Iterator[Any]:
    """Yield the canonical tables of one account as Arrow batches (see module docstring)."""
    yield from (item for item in _AccountRun(api, account).items() if item is not BATCH_END)


def account_batches(api: Api, account: Account) -> Iterator[Any]:
    """Like `run_account`, with `BATCH_END` yielded after each batch of `account.batch_clients`
    clients whose rows and state are complete (sources/shared/sweep.py): the caller ends the
    extract there so that dlt commits the batch, then resumes this stream for the next one."""
    yield from _AccountRun(api, account).items()


def require(provider: str, account: str | None, value: str | None, key: str) -> str:
    """A required text setting, stripped; a clear error naming the key when it is empty."""
    text = str(value).strip() if value is not None else ""
    if not text:
        raise ConfigurationError(provider, account, f"{key} is empty", config_hint(provider, [key]))
    return text


@dataclass
class _Walk:
    """One listing read to its end: its pages (each page's context and records, a record seen
    on an earlier page left out) and the counts the API reported on them."""

    pages: list[tuple[Any, list[Any]]] = field(default_factory=list)
    totals: set[Any] = field(default_factory=set)

    @property
    def records(self) -> Iterator[tuple[Any, Any]]:
        """Every record with its page's context."""
        for context, records in self.pages:
            for record in records:
                yield record, context

    @property
    def stable(self) -> bool:
        """Whether the count the API reports stayed the same on every page."""
        return len(self.totals) <= 1


class RecordWriter:
    """Maps records a page at a time with a provider's mappers and writes what mapped; what did
    not is counted in the run's stats with its reason and id, and its id kept in `failed`.

    Used by every run, and on its own wherever records come from somewhere other than the API
    (pages on disk, stored payloads).
    """

    def __init__(self, api: Api, writer: TableWriter, stats: RunStats) -> None:
        self.api, self.writer, self.stats = api, writer, stats
        self.failed: dict[str, tuple[str, Any]] = {}  # record key → (reason, record)
        self.mapped: set[str] = set()
        # When a list: the ids of the records written, in the order their rows reach the writer
        # (a page's vectorised rows first, then those its record mapper took), for a caller that
        # must tell which record each row came from (remap).
        self.order: list[str] | None = None

    def write(self, records: Sequence[Any], context: Context, ids: Sequence[str] | None = None) -> Iterator[Any]:
        """Map one page's `records` (whose ids are `ids`, read from the records when None) and
        buffer the rows; yields full batches for dlt."""
        if ids is None:
            ids = [_id(record) or "" for record in records]
        if self.api.mapping.invoice_arrow is not None and records:
            yield from self._write_arrow(records, context, ids)
            return
        yield from self._write_records(records, context, ids)

    def _write_records(self, records: Sequence[Any], context: Context, ids: Sequence[str]) -> Iterator[Any]:
        for record, record_id, result in zip(records, ids, self._map(records, context), strict=True):
            if isinstance(result, ValueProblem):
                self.stats.skip(f"invoice not mapped: {result}", record_id or None)
                self.failed[record_key(record)] = (str(result), record)
                continue
            self.mapped.add(record_id)
            if self.order is not None:
                self.order.append(record_id)
            yield from write_invoice(self.writer, result, self.stats)

    def _write_arrow(self, records: Sequence[Any], context: Context, ids: Sequence[str]) -> Iterator[Any]:
        """A page through the vectorised mapper; what it leaves, or a page it fails on, through
        the record mapper, so that every record is mapped exactly once and exactly."""
        mapper = self.api.mapping.invoice_arrow
        if mapper is None:
            return
        try:
            rows = mapper(records, context)
        except (ValueProblem, pa.ArrowInvalid, pa.ArrowTypeError):
            rows = None
        if rows is None:
            yield from self._write_records(records, context, ids)
            return
        fallback = set(rows.fallback)
        handled = [i for i in range(len(records)) if i not in fallback]
        if len(handled) != rows.invoices.num_rows:
            raise RuntimeError(
                f"{self.api.provider}: page mapper gave {rows.invoices.num_rows} invoices for {len(handled)} records"
            )
        for i in handled:
            self.mapped.add(ids[i])
        if self.order is not None:
            self.order.extend(ids[i] for i in handled)
        self.stats.add(invoices=rows.invoices.num_rows, lines=rows.items.num_rows)
        mismatches = total_mismatches(rows.invoices)
        if mismatches:
            self.stats.add(mismatches=mismatches)
        yield from self.writer.add_arrow(rows.invoices, rows.items)
        if fallback:
            left = sorted(fallback)
            yield from self._write_records([records[i] for i in left], context, [ids[i] for i in left])

    def flush(self) -> Iterator[Any]:
        yield from self.writer.flush()

    def _map(self, records: Sequence[Any], context: Context) -> list[Any]:
        mapping = self.api.mapping
        if mapping.invoice_page is not None:
            return mapping.invoice_page(records, context)
        results: list[Any] = []
        for record in records:
            if type(record) is not dict:
                # A list, text, a number or null in the page's array: unmappable, kept and reported
                # like any record the mapping refuses (the record mappers read objects only), in
                # the words the listing uses for it.
                results.append(ValueProblem("not a JSON object"))
                continue
            try:
                mapped = mapping.invoice(record, context)
            except ValueProblem as problem:
                results.append(problem)
                continue
            reason = unfit(mapped)
            results.append(mapped if reason is None else ValueProblem(reason))
        return results


class _AccountRun:
    def __init__(self, api: Api, account: Account) -> None:
        self.api, self.account = api, account
        self.stats: RunStats = start_run(api.provider, account.label or "")
        self.writer = TableWriter()
        self.records = RecordWriter(api, self.writer, self.stats)
        self.names: dict[str, str | None] = {}
        self.concurrency = account.concurrency or api.concurrency
        self._lookups: dict[str, Any] = {}
        self._lookup_lock = threading.Lock()
        self.client: ApiClient | None = None
        self.failed_clients: dict[str, tuple[str, Any]] = {}
        self.mapped_clients: set[str] = set()
        self.invoices_complete = False
        self._state: dict[str, Any] | None = None  # the account's, once its label is known
        self.listed = Listed(api.provider, account.label or "", dt.datetime.now(dt.UTC))

    # --- the run --------------------------------------------------------------------------

    def items(self) -> Iterator[Any]:
        with ExitStack() as stack:
            self.client = stack.enter_context(self._client(stack))
            yield from self._load(self.client)

    def _load(self, client: ApiClient) -> Iterator[Any]:
        api, stats = self.api, self.stats
        label = self.account.label
        listed_at = int(time.time())
        sweep = self._sweep_due(api.clients, self._state_if_known())
        clients = self._walk(client, api.clients, {} if sweep else self._since_params(api.clients, None))
        if label is None:
            label = self._label_from(clients)
            if label is None:
                return  # no client, no label: an empty account has nothing to load
            stats.account = client.account = label
        state: dict[str, Any] = dlt.current.source_state().setdefault(label, {})
        self._state = state
        if self.account.holds_no_rows is not None:
            self.writer.first_load = lambda: self._first_load(label)
        remember_options(state, self.account.options)  # for remap (sources/shared/inputs.py)
        self.listed = stats.listed = Listed(api.provider, label, dt.datetime.fromtimestamp(listed_at, dt.UTC))
        self.listed.by_client = api.invoices.per_client
        yield from self._write_clients(clients, state, label, listed_at)
        yield from self._write_invoices(client, state, label, clients)
        clients_complete = (sweep or not _incremental(api.clients)) and clients.stable
        self._note_listed(CLIENTS, clients, ACCOUNT, clients_complete, state, sweep, listed_at)
        yield from self._keep_unmapped(
            state, label, "client", self.failed_clients, self.mapped_clients, clients_complete
        )
        yield from self._keep_unmapped(
            state, label, "invoice", self.records.failed, self.records.mapped, self.invoices_complete
        )
        yield from self.writer.flush()

    def _first_load(self, label: str) -> bool:
        """Whether the destination holds no row of the account: this extract appends."""
        check = self.account.holds_no_rows
        empty = check is not None and check(self.api.provider, label)
        if empty:
            run_log.info(
                "%s [%s]: no rows of this account in the warehouse yet: appending instead of merging",
                self.api.provider,
                label,
            )
        return empty

    def _keep_unmapped(
        self,
        state: dict[str, Any],
        label: str,
        record_type: str,
        failed: Mapping[str, tuple[str, Any]],
        mapped: set[str],
        complete: bool,
        count: bool = True,
    ) -> Iterator[Any]:
        """Keep what could not be mapped in `unmapped_records` (docs/canonical-model.md), and take
        out what maps now: a record mapped this run, or, after a complete listing, one the
        provider no longer lists (its payload changed, so its hash key did, or it is gone)."""
        known: dict[str, str] = unmapped_state(state).setdefault(record_type, {})
        now = dt.datetime.now(dt.UTC)
        keys = {"provider": self.api.provider, "account": label, "record_type": record_type}
        for key, (reason, record) in failed.items():
            first_seen = known.get(key) or now.isoformat()
            known[key] = first_seen
            row = {
                **keys,
                "record_key": key,
                "reason": reason,
                "first_seen_at": dt.datetime.fromisoformat(first_seen),
                "last_seen_at": now,
                "raw": dumps(record),
            }
            yield from self.writer.add_unmapped(row)
        for key in [k for k in known if k not in failed and (k in mapped or complete)]:
            del known[key]
            yield from self.writer.add_unmapped({**keys, "record_key": key, TOMBSTONE: True})
        if count:
            self.stats.add(unmapped=len(failed))

    def _label_from(self, clients: _Walk) -> str | None:
        reader = self.api.mapping.account_from
        found = next((v for v in (reader(r) for r, _ in clients.records) if v), None) if reader else None
        if found is None and clients.pages and any(records for _, records in clients.pages):
            raise ConfigurationError(
                self.api.provider,
                None,
                "the API returned nothing to label this account's rows with",
                config_hint(self.api.provider, ["account"], file="config.toml"),
            )
        return found

    # --- clients --------------------------------------------------------------------------

    def _write_clients(self, walk: _Walk, state: dict[str, Any], label: str, listed_at: int) -> Iterator[Any]:
        listing, stats = self.api.clients, self.stats
        cursor = _cursor(listing, state)
        wanted = set(self.account.only_clients) if self.account.only_clients else None
        if not self.api.invoices.per_client:
            stats.clients_total = sum(len(records) for _, records in walk.pages)
        for record, page in walk.records:
            record_id = _id(record) or "?"
            if wanted is not None and record_id not in wanted:
                continue
            try:
                row = self.api.mapping.client(record, self._context(label, page))
            except ValueProblem as problem:
                stats.skip(f"client not mapped: {problem}", record_id)
                self.failed_clients[record_key(record)] = (str(problem), record)
                self._remember_context(listing, "client", [record], page)
                continue
            self.mapped_clients.add(row["client_id"])
            self.names[row["client_id"]] = row["name"]
            if not self.api.invoices.per_client:
                stats.add(clients_done=1)
            if cursor is not None:
                cursor.observe(record_id, row["updated_at"])
                if not cursor.is_changed(record_id, row["updated_at"]):
                    continue
            stats.add(clients=1)
            self._remember_context(listing, "client", [record], page)
            yield from self.writer.add_client(row)
        if cursor is not None:
            cursor.commit()
        if isinstance(listing.cursor, ListedSince):
            state[listing.cursor.state_key] = listed_at

    # --- invoices -------------------------------------------------------------------------

    def _write_invoices(self, client: ApiClient, state: dict[str, Any], label: str, clients: _Walk) -> Iterator[Any]:
        listing, stats = self.api.invoices, self.stats
        cursor = _cursor(listing, state)
        retry = set(unmapped_state(state).get("invoice", {}))
        known = dict(state.get("client_names") or {}) if self.api.mapping.invoice_client else None
        stable = True
        sweep: Sweep | None = None  # the sweep of per-client listings committed in batches
        full_sweep = False  # an incremental account-wide listing read in full (deletions)
        resumed, targets = False, []
        if listing.per_client:
            targets = self._targets(clients)
            sweep = self._sweep(state, label, listing)
            if sweep is not None:
                targets = sweep.remaining(targets)
            stats.clients_total = len(targets)

            def documents(client_id: str) -> _Walk | BillingError | None:
                try:
                    return self._walk(client, listing, {}, client_id=client_id)
                except NotFoundError:
                    return None
                except (HttpStatusError, UnreachableError) as exc:
                    if not _passing(exc):
                        raise
                    return exc

            unlisted: list[BillingError] = []
            for client_id, walk in bounded_map(documents, targets, self.concurrency):
                if walk is None:
                    stats.skip("client not found (HTTP 404) when listing its documents", client_id)
                elif isinstance(walk, BillingError):
                    unlisted.append(walk)
                    self._skip_client(client_id, walk)
                else:
                    stable = stable and walk.stable
                    self._note_listed(INVOICES, walk, client_id, walk.stable and listing.complete)
                    yield from self._write_pages(walk, label, cursor, retry, known)
                stats.add(clients_done=1)
                if sweep is not None and sweep.finished(client_id, listed=not isinstance(walk, BillingError)):
                    yield from self._commit_batch(state, label, sweep, cursor, stable)
            if unlisted and len(unlisted) == len(targets):
                raise unlisted[0]  # no client could be listed: the API is down, not one client
            listings_stable = stable
            # A client not listed keeps every cursor where it is: the next run reads it again.
            stable = stable and not unlisted
            if sweep is not None:
                stable = stable and sweep.stable
                resumed = sweep.resumed
                if unlisted:
                    # Keep the sweep open without the clients not listed: the next run lists
                    # only those (and whatever else it has not finished), never takes them as done.
                    sweep.commit_batch(state, cursor, listings_stable)
                else:
                    sweep.complete(state)
        else:
            full_sweep = self._sweep_due(listing, state)
            walk = self._walk(client, listing, {} if full_sweep else self._since_params(listing, state))
            stable = walk.stable
            complete = stable and (full_sweep or not _incremental(listing))
            self._note_listed(INVOICES, walk, ACCOUNT, complete, state, full_sweep, int(self.listed.at.timestamp()))
            yield from self._write_pages(walk, label, cursor, retry, known)
        if isinstance(cursor, OverlapCursor):
            # A record that could not be mapped never moves a server-side cursor past itself.
            for _, record in self.records.failed.values():
                cursor.hold(self._updated_at(record, self._context(label, None)))
        if cursor is not None:
            if stable and sweep is not None and isinstance(cursor, UpdateCursor):
                sweep.commit_cursor(state, cursor, listing.cursor.state_key)  # type: ignore[union-attr]
            elif stable:
                cursor.commit()
            else:
                # Pages shifted under the scan: a record may have been missed, so the mark stays
                # and the next run looks again at everything changed since the last good one.
                log.warning(
                    "%s [%s]: the listing changed while it was read; the cursor was not moved", self.api.provider, label
                )
        state.pop("retry_ids", None)  # kept in `unmapped` now
        # A resumed sweep did not list the clients an earlier run finished: never complete.
        self.invoices_complete = stable and (full_sweep or not _incremental(listing)) and not resumed
        if known is not None and not resumed:
            state["client_names"] = self.names
        elif known is not None:  # the names this run's clients' invoices were written with
            state.setdefault("client_names", {}).update({c: self.names.get(c) for c in targets})

    def _sweep(self, state: dict[str, Any], label: str, listing: Listing) -> Sweep | None:
        """The sweep of per-client listings when the run commits in batches (sweep.py): only
        with no cursor or a client-side one (a server-side mark is not per client)."""
        size = self.account.batch_clients
        if not size or isinstance(listing.cursor, (UpdatedSince, ListedSince)):
            return None
        only = sorted(self.account.only_clients or [])
        listed = fingerprint(listing.path, listing.params, listing.json, only)
        return Sweep(state, size, listed, f"{self.api.provider} [{label}]")

    def _commit_batch(
        self, state: dict[str, Any], label: str, sweep: Sweep, cursor: Any, stable: bool
    ) -> Iterator[Any]:
        """End a batch: its rows, its unmapped records and the sweep's progress go out together
        (one load package), then `BATCH_END`; the next batch's extract gets this same state."""
        yield from self._keep_unmapped(
            state, label, "invoice", self.records.failed, self.records.mapped, False, count=False
        )
        yield from self.writer.flush()
        batch = sweep.commit_batch(state, cursor, stable)
        if self.api.mapping.invoice_client is not None:
            # The names these clients' invoices were written with (see `_renamed`).
            names: dict[str, Any] = state.setdefault("client_names", {})
            names.update({client_id: self.names.get(client_id) for client_id in batch})
        yield BATCH_END
        self.writer.new_extract()
        # Each extract hands the resource a fresh copy of the state it committed: carry on with
        # this one (the same values), so that the cursors and lists kept in it stay live.
        dlt.current.source_state()[label] = state

    def _targets(self, clients: _Walk) -> list[str]:
        listed = [i for i in (_id(r) for r, _ in clients.records) if i]
        only = self.account.only_clients
        if not only:
            return listed
        known = set(listed)
        # Requested clients the listing does not hold are still asked for: the API says 404.
        return [c for c in only if c in known] + [c for c in only if c not in known]

    def _write_pages(
        self,
        walk: _Walk,
        label: str,
        cursor: UpdateCursor | OverlapCursor | None,
        retry: set[str],
        known: dict[str, Any] | None,
    ) -> Iterator[Any]:
        """Per page: decide from the cursor what changed, map that at once, write what mapped
        and report what did not."""
        stats = self.stats
        for page, records in walk.pages:
            context = self._context(label, page)
            todo: list[Any] = []
            ids: list[str] = []
            for record in records:
                if not isinstance(record, dict):
                    stats.skip("invoice not mapped: not a JSON object")
                    continue
                record_id = _id(record) or ""
                if cursor is not None:
                    updated_at = self._updated_at(record, context)
                    cursor.observe(record_id, updated_at)
                    renamed = known is not None and self._renamed(record, known)
                    if not (cursor.is_changed(record_id, updated_at) or record_id in retry or renamed):
                        stats.add(unchanged=1)
                        continue
                todo.append(record)
                ids.append(record_id)
            self._remember_context(self.api.invoices, "invoice", todo, page)
            yield from self.records.write(todo, context, ids)

    def _remember_context(self, listing: Listing, record_type: str, records: Sequence[Any], page: Any) -> None:
        """Keep the page context of records about to be written, for remap (sources/shared/inputs.py)."""
        if listing.page_context is not None and self._state is not None and records:
            remember_context(self._state, record_type, [record_key(r) for r in records], page)

    def _updated_at(self, record: Any, context: Context) -> Any:
        reader = self.api.mapping.invoice_updated_at
        if reader is None:
            return None
        try:
            return reader(record, context)
        except ValueProblem:
            return None  # no readable timestamp: nothing proves the record unchanged

    def _renamed(self, record: Any, known: Mapping[str, Any]) -> bool:
        """Whether the record's client has another name than when it was last written."""
        reader = self.api.mapping.invoice_client
        client_id = reader(record) if reader else None
        return client_id is not None and self.names.get(client_id) != known.get(client_id)

    # --- deletions (docs/canonical-model.md, "Deletions") -----------------------------------

    def _sweep_due(self, listing: Listing, state: Mapping[str, Any]) -> bool:
        """Whether an incremental listing is read in full this run, without its change filter:
        on the first run, and `reconcile_every` after the last complete sweep. A listing narrowed
        by the account's filters is never swept (it could not show a deletion anyway)."""
        if not _incremental(listing) or not listing.complete:
            return False
        key = _cursor_key(listing)
        last = (state.get(SWEPT_AT) or {}).get(key)
        unmarked = key in (state.get(SWEPT_PENDING) or {})
        due = unmarked or last is None or time.time() - float(last) >= self.account.reconcile_every.total_seconds()
        if due and last is not None:
            log.info(
                "%s [%s]: sweeping %s in full to find deletions", self.api.provider, self.stats.account, listing.path
            )
        return due

    def _note_listed(
        self,
        table: str,
        walk: _Walk,
        scope: str | None,
        complete: bool,
        state: dict[str, Any] | None = None,
        sweep: bool = False,
        listed_at: int = 0,
    ) -> None:
        """Note what a listing held for finding deletions; a complete sweep also moves its mark."""
        listing = self.api.clients if table == CLIENTS else self.api.invoices
        ids = [i for i in (_id(record) for record, _ in walk.records) if i]
        self.listed.add(table, ids, scope, complete and listing.complete)
        if sweep and complete and state is not None:
            state.setdefault(SWEPT_PENDING, {})[_cursor_key(listing)] = listed_at
            self.listed.swept = True

    def _skip_client(self, client_id: str, error: BillingError) -> None:
        """A client whose documents could not be listed after retries: reported, read again by
        the next run, and none of its rows taken as deleted."""
        status = getattr(error, "status", None)
        why = f"HTTP {status}" if status else "no answer"
        self.stats.skip(f"documents not listed ({why} after retries); read again next run", client_id)
        self.listed.unlisted[client_id] = error.describe()

    # --- listings -------------------------------------------------------------------------

    def _walk(self, client: ApiClient, listing: Listing, extra: Mapping[str, Any], client_id: str = "") -> _Walk:
        """Read a listing to its end (duplicates across pages dropped, reported totals kept)."""
        request = Request(
            path=listing.path.format(client_id=_path_segment(client_id)) if listing.per_client else listing.path,
            records=listing.records,
            method=listing.method,
            params={**listing.params, **extra},
            json=listing.json,
            idempotent=True if listing.read_only_post else None,
        )
        paginator = paginator_for(listing.paging, listing.page_size)
        if listing.parallel_pages and isinstance(paginator, PageNumberPaginator):
            pages = paginate_numbered(client, request, paginator, workers=self.concurrency)
        else:
            pages = paginate(client, request, paginator)
        walk, seen = _Walk(), set()
        try:
            for page in pages:
                if listing.total_path:
                    walk.totals.add(dig(page.response.data, listing.total_path))
                context = listing.page_context(page.response.data) if listing.page_context else None
                kept: list[Any] = []
                for record in page.items:
                    if listing.keep is not None and not listing.keep(record):
                        continue
                    record_id = _id(record)
                    if record_id is not None:
                        if record_id in seen:
                            continue
                        seen.add(record_id)
                    kept.append(record)
                walk.pages.append((context, kept))
        except HttpStatusError as exc:
            hint = listing.status_hints.get(exc.status or 0)
            if hint is None:
                raise
            raise HttpStatusError(exc.provider, exc.account, exc.message, hint, status=exc.status, url=exc.url) from exc
        return walk

    def _since_params(self, listing: Listing, state: Mapping[str, Any] | None) -> dict[str, Any]:
        """The server-side filter of an incremental listing, from the mark in `state`."""
        policy = listing.cursor
        if state is None:
            state = self._state_if_known()
        if isinstance(policy, UpdatedSince):
            since = OverlapCursor(dict(state), policy.state_key, policy.overlap).since
            return {policy.param: since} if since is not None else {}
        if isinstance(policy, ListedSince):
            previous = state.get(policy.state_key)
            if previous is not None:
                return {policy.param: int(previous) - int(policy.overlap.total_seconds())}
        return {}

    def _state_if_known(self) -> Mapping[str, Any]:
        if self.account.label is None:
            return {}
        return dlt.current.source_state().get(self.account.label, {})

    # --- context and lookups ----------------------------------------------------------------

    def _context(self, label: str, page: Any) -> Context:
        return Context(
            provider=self.api.provider,
            account=label,
            page=page,
            client_names=self.names,
            options=self.account.options,
            lookup=self.lookup,
        )

    def lookup(self, name: str) -> Any:
        """A declared lookup's value, fetched on first use and kept for the run."""
        with self._lookup_lock:
            if name not in self._lookups:
                declared = self.api.lookups[name]
                if self.client is None:
                    raise RuntimeError("lookup outside a run")
                try:
                    body = self.client.get(declared.path).data
                except NotFoundError:
                    if not declared.missing_ok:
                        raise
                    log.warning("%s: %s is not available", self.api.provider, declared.path)
                    body = None
                self._lookups[name] = declared.read(body)
                if self._state is not None:
                    remember_lookup(self._state, name, self._lookups[name])  # for remap
            return self._lookups[name]

    # --- the HTTP client ------------------------------------------------------------------

    def _client(self, stack: ExitStack) -> ApiClient:
        api, account = self.api, self.account
        label = account.label or ""
        secret_keys = _secret_keys(api)
        hint = config_hint(api.provider, secret_keys) + (f"; {api.auth_help}" if api.auth_help else "")
        for key in secret_keys:
            value = account.secrets.get(key)
            require(api.provider, account.label, value, key)
            register_secret(str(value).strip())
        common: dict[str, Any] = dict(
            auth_hint=hint,
            transport=account.transport,
            timeout=account.timeout,
            stats=self.stats,
            error_message=api.error_message,
        )
        auth: Auth
        scheme = api.auth
        if isinstance(scheme, QueryKey):
            auth = QueryParamAuth(scheme.param, _secret(account, scheme.secret))
        elif isinstance(scheme, HeaderKey):
            word = scheme.scheme if account.auth_scheme is None else (account.auth_scheme.strip() or None)
            auth = HeaderAuth(scheme.header, _secret(account, scheme.secret), word)
        else:
            token_url = require(api.provider, account.label, account.token_url, "token_url")
            token_client = ApiClient(api.provider, label, token_url, **common)
            auth = stack.enter_context(_closing_auth(_oauth(scheme, token_client, token_url, account)))
        rpm = account.requests_per_minute if account.requests_per_minute is not None else api.requests_per_minute
        return ApiClient(
            api.provider,
            label,
            account.base_url,
            auth=auth,
            headers=api.headers,
            budget=RateBudget(rpm),
            max_connections=self.concurrency + 2,
            is_login_redirect=api.is_login_redirect,
            **common,
        )


def _oauth(
    scheme: ClientCredentials, token_client: ApiClient, token_url: str, account: Account
) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        token_client,
        token_url,
        _secret(account, scheme.id_secret),
        _secret(account, scheme.secret_secret),
        header=scheme.header,
        scheme=scheme.scheme,
        default_lifetime=scheme.default_lifetime,
        renew_fraction=scheme.renew_fraction,
    )


class _closing_auth:
    """Closes an auth's own HTTP client (the token endpoint's) with the run."""

    def __init__(self, auth: ClientCredentialsAuth) -> None:
        self.auth = auth

    def __enter__(self) -> ClientCredentialsAuth:
        return self.auth

    def __exit__(self, *exc: object) -> None:
        self.auth.close()


def _secret_keys(api: Api) -> list[str]:
    scheme = api.auth
    if isinstance(scheme, ClientCredentials):
        return [scheme.id_secret, scheme.secret_secret]
    return [scheme.secret]


def _secret(account: Account, key: str) -> str:
    return str(account.secrets[key]).strip()


def _cursor(listing: Listing, state: dict[str, Any]) -> UpdateCursor | OverlapCursor | None:
    policy = listing.cursor
    if isinstance(policy, UpdatedAt):
        return UpdateCursor(state, policy.state_key)
    if isinstance(policy, UpdatedSince):
        return OverlapCursor(state, policy.state_key, policy.overlap)
    if isinstance(policy, (FullListing, ListedSince)):
        return None
    raise TypeError(f"unknown cursor policy {policy!r}")


def _incremental(listing: Listing) -> bool:
    """Whether the API is asked only for what changed: such a listing never shows a deletion."""
    return isinstance(listing.cursor, (UpdatedSince, ListedSince))


def _cursor_key(listing: Listing) -> str:
    policy = listing.cursor
    return policy.state_key if isinstance(policy, (UpdatedSince, ListedSince)) else ""


def _passing(error: BillingError) -> bool:
    """A failure that outlived its retries and may pass by the next run (a timeout, a 5xx), as
    opposed to one every run would meet again (credentials, a refused request)."""
    return isinstance(error, UnreachableError) or (isinstance(error, HttpStatusError) and (error.status or 0) >= 500)


def forget_sweeps(account_state: dict[str, Any]) -> bool:
    """Make every sweep of an account due again (its deletions were refused); whether one was kept."""
    kept = account_state.pop(SWEPT_AT, None) is not None
    return account_state.pop(SWEPT_PENDING, None) is not None or kept


def sweeps_marked(account_state: dict[str, Any]) -> bool:
    """The account's swept listings had their deletions marked: their sweeps count from now on
    (`reconcile_every` runs from them); whether anything changed."""
    pending = account_state.pop(SWEPT_PENDING, None)
    if not pending:
        return False
    account_state.setdefault(SWEPT_AT, {}).update(pending)
    return True


def unmapped_state(state: dict[str, Any]) -> dict[str, dict[str, str]]:
    """record type → record key → when it was first seen unmapped, in the account's state."""
    found: dict[str, dict[str, str]] = state.setdefault("unmapped", {})
    return found


def record_key(record: Any) -> str:
    """A record's key in `unmapped_records`: its id, else a stable hash of its payload."""
    record_id = _id(record)
    if record_id:
        return record_id
    return "sha256:" + hashlib.sha256(dumps(record).encode()).hexdigest()[:32]


def _id(record: Any) -> str | None:
    return to_text(record.get("id")) if isinstance(record, dict) else None


def _path_segment(value: str) -> str:
    return quote(value, safe="")
