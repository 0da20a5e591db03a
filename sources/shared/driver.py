"""One driver for every provider: loads one provider account from its declaration.

A run of one account, whatever the provider:

1. build the HTTP client from the declared auth scheme, within the account's request budget;
2. list the account's clients (incrementally where the API allows), learn the account's label
   from them when the API is the only one that knows it, map and write them page by page;
3. list the documents: each client's listing, several clients in flight at once, or the
   account's one listing, its pages streamed into mapping and writing as they arrive; a client
   that disappeared (404) is reported and skipped;
4. per page: decide from the cursor which records changed, map those, write what mapped and
   keep what did not in `unmapped_records` with its reason (never silently);
5. move the cursors only when their listing was read completely and stayed stable;
6. note what every listing held and which scopes were read completely, so that rows deleted
   upstream can be marked once the run is loaded (`sources.shared.deletions`); an incremental
   listing is swept in full every `reconcile_every`, and a client whose documents could not be
   listed after retries is skipped, never taken as deleted.

Nothing holds a whole listing: what must outlive it (ids seen, cursor marks, whether it was read
completely) is small per record. dlt commits the source state (the cursors) in the same load
package as the rows they cover, so an interrupted run moves no cursor and the next run sees the
same changes again. With `Account.batch_clients`, per-client listings are committed in batches
of clients and an interrupted sweep resumes where it stopped (sources/shared/sweep.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, MutableMapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Context as DecimalContext
from decimal import DecimalException, Inexact, localcontext
from typing import Any, Protocol
from urllib.parse import quote

import dlt
import httpx

from sources.shared import stop
from sources.shared.auth import Auth, ClientCredentialsAuth, HeaderAuth, QueryParamAuth
from sources.shared.concurrency import bounded_streams
from sources.shared.cursor import Tracker
from sources.shared.declaration import (
    Api,
    ClientCredentials,
    Context,
    HeaderKey,
    Listing,
    QueryKey,
    Setting,
    dig,
)
from sources.shared.deletions import ACCOUNT, Listed
from sources.shared.errors import BillingError, ConfigurationError, HttpStatusError, NotFoundError, UnreachableError
from sources.shared.http import ApiClient
from sources.shared.inputs import Recorder
from sources.shared.model import CLIENTS, INPUTS, INVOICES, TOMBSTONE, MappedInvoice, TableWriter
from sources.shared.paginators import PageNumberPaginator, Request, paginate, paginate_numbered, paginator_for
from sources.shared.provider import config_hint
from sources.shared.ratelimit import RateBudget
from sources.shared.records import Record, line_texts
from sources.shared.redact import register_secret
from sources.shared.stats import RunStats, start_run
from sources.shared.structure import Observer, current_run_id, schema_changes
from sources.shared.sweep import BATCH_END, Sweep, fingerprint
from sources.shared.values import ValueProblem

log = logging.getLogger("billing.driver")
# A child of the run's logger: said by default, like a committed batch.
run_log = logging.getLogger("billing.run.load")

SWEPT_AT = "swept_at"
# A sweep read in full whose deletions are not marked yet (docs/deletions.md): committed with the
# sweep's rows, moved to SWEPT_AT only once the marking is done (`sweeps_marked`), so a run killed
# between its load and the marking sweeps again next run instead of waiting `reconcile_every`.
SWEPT_PENDING = "swept_pending"
"""Where an account's state keeps, per incremental listing, when it was last swept in full."""
DEFAULT_RECONCILE_EVERY = dt.timedelta(days=7)
NOT_AN_OBJECT = "not a JSON object"
# Mappings compute some amounts (a subtotal from a total, a product): in this context such
# arithmetic is exact or refused (`decimal.Inexact`, the record unmapped), never silently rounded.
EXACT = DecimalContext(prec=100, traps=[Inexact])


@dataclass(frozen=True)
class Account:
    """One provider account as configured: what the declaration leaves to the user.

    Attributes:
        label: the `account` value of its rows; None where the API tells it (see
            `Mappers.account_from`).
        base_url: the API root.
        secrets: the declared secrets by setting name.
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


class States(Protocol):
    """Where the accounts' incremental state lives (dlt's source state in a load; a dict in tests)."""

    def of(self, label: str) -> dict[str, Any]:
        """The account's state, created empty when it has none."""

    def peek(self, label: str) -> Mapping[str, Any]:
        """The account's state as it is, without creating it."""

    def renew(self, label: str, state: dict[str, Any]) -> None:
        """A new extract began (a batch): make `state` the account's state there."""


class DltStates:
    """The state of the current dlt source, one entry per account label."""

    def of(self, label: str) -> dict[str, Any]:
        found: dict[str, Any] = dlt.current.source_state().setdefault(label, {})
        return found

    def peek(self, label: str) -> Mapping[str, Any]:
        found: Mapping[str, Any] = dlt.current.source_state().get(label, {})
        return found

    def renew(self, label: str, state: dict[str, Any]) -> None:
        # Each extract hands the resource a fresh copy of the state it committed: carry on with
        # this one (the same values), so that the cursors and lists kept in it stay live.
        dlt.current.source_state()[label] = state


class DictStates:
    """Account states in a plain dict: the driver run outside dlt (tests, tools)."""

    def __init__(self, states: dict[str, Any] | None = None) -> None:
        self.states: dict[str, Any] = {} if states is None else states

    def of(self, label: str) -> dict[str, Any]:
        found: dict[str, Any] = self.states.setdefault(label, {})
        return found

    def peek(self, label: str) -> Mapping[str, Any]:
        found: Mapping[str, Any] = self.states.get(label, {})
        return found

    def renew(self, label: str, state: dict[str, Any]) -> None:
        self.states[label] = state


def billing_resource(api: Api, account: Account) -> Any:
    """The dlt resource that loads one account into the canonical tables."""
    return dlt.resource(run_account, name=f"{api.provider}_billing")(api, account)


def run_account(api: Api, account: Account, states: States | None = None) -> Iterator[Any]:
    """Yield the canonical tables of one account as Arrow tables (see module docstring)."""
    yield from (item for item in account_batches(api, account, states) if item is not BATCH_END)


def account_batches(api: Api, account: Account, states: States | None = None) -> Iterator[Any]:
    """Like `run_account`, with `BATCH_END` yielded after each batch of `account.batch_clients`
    clients whose rows and state are complete (sources/shared/sweep.py): the caller ends the
    extract there so that dlt commits the batch, then resumes this stream for the next one."""
    yield from _AccountRun(api, account, states or DltStates()).items()


def require(provider: str, account: str | None, value: str | None, key: str) -> str:
    """A required text setting, stripped; a clear error naming the key when it is empty."""
    text = str(value).strip() if value is not None else ""
    if not text:
        raise ConfigurationError(provider, account, f"{key} is empty", config_hint(provider, [key]))
    return text


@dataclass
class Walk:
    """What one listing held, noted as its pages stream by: the ids seen (a record listed twice
    is written once), the record counts the API reported, and how many pages."""

    seen: set[str] = field(default_factory=set)
    totals: set[Any] = field(default_factory=set)
    pages: int = 0
    records: int = 0

    @property
    def stable(self) -> bool:
        """Whether the count the API reports stayed the same on every page."""
        return len(self.totals) <= 1


Page = tuple[Any, list[Record]]  # a page's context and its records


class RecordWriter:
    """Maps records with a provider's mappers and writes what mapped; what did not is counted in
    the run's stats with its reason and id, and kept in `failed` for `unmapped_records`.

    Used by every load, and by remap on stored payloads: one mapping, one way to write it.

    Args:
        api: the provider's declaration.
        writer: where the rows go.
        stats: the run's counters.
        watched: the keys of records waiting in `unmapped_records`: those that map now are
            noted in `resolved` (nothing else is remembered per record).
    """

    def __init__(self, api: Api, writer: TableWriter, stats: RunStats, watched: set[str] | None = None) -> None:
        self.api, self.writer, self.stats = api, writer, stats
        # record type → key → (reason, record, inputs)
        self.failed: dict[str, dict[str, tuple[str, Record, str | None]]] = {"client": {}, "invoice": {}}
        self.watched: set[str] = watched if watched is not None else set()
        self.resolved: set[str] = set()
        keeps_page = api.invoices.page_context is not None or api.clients.page_context is not None
        self.recorder = Recorder(keep_page=keeps_page)
        # What a load stores is described for `schema_changes` (sources/shared/structure.py); remap stores nothing new.
        self.observer: Observer | None = None

    def fail(self, record: Record, reason: str, inputs: str | None, record_type: str = "invoice") -> None:
        """Keep a record that could not be mapped, with why (reported in the summary)."""
        key = record.key
        self.stats.skip(f"{record_type} not mapped: {reason}", record.id)
        self.failed[record_type][key] = (reason, record, inputs)
        self.resolved.discard(key)

    def write(self, records: Sequence[Record], context: Context) -> Iterator[Any]:
        """Map one page's invoice `records` (decoded objects) and write what mapped."""
        if not records:
            return
        if self.observer is not None:
            self.observer.invoices(records)
        mapper, lines, recorder = self.api.mapping.invoice, self.api.mapping.lines, self.recorder
        ctx = recorder.context(context)
        batch: list[MappedInvoice] = []
        taken: list[tuple[Record, str | None]] = []
        with localcontext(EXACT):
            for record in records:
                recorder.start()
                try:
                    mapped = mapper(record.value, ctx)
                    inputs = recorder.take(context.page)
                    _keep_payload(mapped, record, lines, inputs)
                except (ValueProblem, DecimalException) as problem:
                    self.fail(record, _reason(problem), recorder.take(context.page))
                    continue
                batch.append(mapped)
                taken.append((record, inputs))
        added = self.writer.add_invoices(batch)
        for position, reason in added.refused.items():
            record, inputs = taken[position]
            self.fail(record, reason, inputs)
        self._resolve(record for position, (record, _) in enumerate(taken) if position not in added.refused)
        self.stats.add(invoices=added.invoices, lines=added.lines, mismatches=added.mismatches)
        yield from self.writer.ready()

    def map_clients(self, records: Sequence[Record], context: Context) -> list[tuple[Record, dict[str, Any]]]:
        """Map one page's client `records`; what does not map is kept in `failed`."""
        mapper, recorder = self.api.mapping.client, self.recorder
        ctx = recorder.context(context)
        mapped: list[tuple[Record, dict[str, Any]]] = []
        with localcontext(EXACT):
            for record in records:
                if type(record.value) is not dict:
                    self.fail(record, NOT_AN_OBJECT, None, "client")
                    continue
                recorder.start()
                try:
                    row = mapper(record.value, ctx)
                except (ValueProblem, DecimalException) as problem:
                    self.fail(record, _reason(problem), recorder.take(context.page), "client")
                    if self.observer is not None:
                        self.observer.clients((record,))
                    continue
                row["raw"], row[INPUTS] = record.text, recorder.take(context.page)
                mapped.append((record, row))
        return mapped

    def write_clients(self, mapped: Sequence[tuple[Record, dict[str, Any]]]) -> int:
        """Write mapped clients (`map_clients`); returns how many were written."""
        if self.observer is not None:
            self.observer.clients(record for record, _ in mapped)
        refused = self.writer.add_clients([row for _, row in mapped])
        for position, reason in refused.items():
            record, row = mapped[position]
            self.fail(record, reason, row[INPUTS], "client")
        self._resolve(record for position, (record, _) in enumerate(mapped) if position not in refused)
        return len(mapped) - len(refused)

    def _resolve(self, records: Iterator[Record]) -> None:
        if self.watched:
            self.resolved.update(key for key in (r.key for r in records) if key in self.watched)


def _keep_payload(mapped: MappedInvoice, record: Record, lines: str, inputs: str | None) -> None:
    """The record's JSON text and inputs on its invoice row, each line's own text on its line."""
    mapped.invoice["raw"], mapped.invoice[INPUTS] = record.text, inputs
    if not mapped.items:
        return
    texts = line_texts(record, lines) or []
    for line in mapped.items:
        number = line.get("line_number")
        if not isinstance(number, int) or not 1 <= number <= len(texts):
            raise ValueProblem(f"{lines}[{number}]: no such line in the record")
        line["raw"] = texts[number - 1]


def _reason(problem: Exception) -> str:
    if isinstance(problem, ValueProblem):
        return str(problem)
    return f"an amount the mapping computes would be rounded or out of range ({type(problem).__name__})"


class _AccountRun:
    def __init__(self, api: Api, account: Account, states: States) -> None:
        self.api, self.account, self.states = api, account, states
        self.stats: RunStats = start_run(api.provider, account.label or "")
        self.writer = TableWriter()
        self.records = RecordWriter(api, self.writer, self.stats)
        self.names: dict[str, str | None] = {}
        self.concurrency = account.concurrency or api.concurrency
        self._lookups: dict[str, Any] = {}
        self._lookup_lock = threading.Lock()
        self.client: ApiClient | None = None
        self.invoices_complete = False
        self.listed = Listed(api.provider, account.label or "", dt.datetime.now(dt.UTC))
        self.records.observer = self.observer = Observer(api.mapping.lines)
        self.run_id = current_run_id()

    # --- the run --------------------------------------------------------------------------

    def items(self) -> Iterator[Any]:
        with ExitStack() as stack:
            self.client = stack.enter_context(self._client(stack))
            yield from self._load(self.client)

    def _load(self, client: ApiClient) -> Iterator[Any]:
        api, stats = self.api, self.stats
        listed_at = int(time.time())
        label = self.account.label
        known = self.states.peek(label) if label is not None else {}
        sweep = self._sweep_due(api.clients, known)
        walk = Walk()
        pages = self._pages(client, api.clients, {} if sweep else api.clients.cursor.params(known), walk)
        if label is None:
            label, pages = self._label_from(pages)
            if label is None:
                return  # no client, no label: an empty account has nothing to load
            stats.account = client.account = label
        state = self.states.of(label)
        unmapped = unmapped_state(state)
        self.records.watched = {k for keys in unmapped.values() for k in keys}
        if self.account.holds_no_rows is not None:
            self.writer.first_load = lambda: self._first_load(label)
        self.listed = stats.listed = Listed(api.provider, label, dt.datetime.fromtimestamp(listed_at, dt.UTC))
        self.listed.by_client = api.invoices.per_client
        targets = yield from self._write_clients(pages, walk, state, label, listed_at)
        yield from self._write_invoices(client, state, label, targets)
        clients_complete = (sweep or not api.clients.cursor.incremental) and walk.stable
        self._note_listed(CLIENTS, walk, ACCOUNT, clients_complete, state, sweep, listed_at)
        # With chosen clients, the others were listed but never mapped: they say nothing of what maps.
        every_client_mapped = clients_complete and not self.account.only_clients
        yield from self._keep_unmapped(state, label, "client", every_client_mapped)
        yield from self._keep_unmapped(state, label, "invoice", self.invoices_complete)
        yield from schema_changes(self.observer.compare(state, api.provider, label, self.run_id))
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
        self, state: dict[str, Any], label: str, record_type: str, complete: bool, count: bool = True
    ) -> Iterator[Any]:
        """Keep what could not be mapped in `unmapped_records` (docs/canonical-model.md), and take
        out what maps now: a record mapped this run, or, after a complete listing, one the
        provider no longer lists (its payload changed, so its hash key did, or it is gone)."""
        failed = self.records.failed[record_type]
        known: dict[str, str] = unmapped_state(state).setdefault(record_type, {})
        now = dt.datetime.now(dt.UTC)
        keys = {"provider": self.api.provider, "account": label, "record_type": record_type}
        for key, (reason, record, inputs) in failed.items():
            first_seen = known.get(key) or now.isoformat()
            known[key] = first_seen
            self.writer.add_unmapped(
                {
                    **keys,
                    "record_key": key,
                    "reason": reason,
                    "first_seen_at": dt.datetime.fromisoformat(first_seen),
                    "last_seen_at": now,
                    "raw": record.text,
                    INPUTS: inputs,
                }
            )
        for key in [k for k in known if k not in failed and (k in self.records.resolved or complete)]:
            del known[key]
            self.writer.add_unmapped({**keys, "record_key": key, TOMBSTONE: True})
        if count:
            self.stats.add(unmapped=len(failed))
        yield from self.writer.ready()

    def _label_from(self, pages: Iterator[Page]) -> tuple[str | None, Iterator[Page]]:
        """The account's label read from its first clients, and the clients' pages (those read
        to find it put back in front)."""
        reader = self.api.mapping.account_from
        held: list[Page] = []
        found: str | None = None
        for page in pages:
            held.append(page)
            if reader is not None:
                found = next((v for v in (reader(r.value) for r in page[1]) if v), None)
            if found is not None:
                break
        if found is None and any(records for _, records in held):
            raise ConfigurationError(
                self.api.provider,
                None,
                "the API returned nothing to label this account's rows with",
                config_hint(self.api.provider, ["account"], file="config.toml"),
            )
        return found, _chain(held, pages)

    # --- clients --------------------------------------------------------------------------

    def _write_clients(
        self, pages: Iterator[Page], walk: Walk, state: dict[str, Any], label: str, listed_at: int
    ) -> Generator[Any, None, list[str]]:
        """Map and write the clients page by page (those that changed, where the listing has a
        cursor); returns the ids whose documents to list."""
        listing, stats, records = self.api.clients, self.stats, self.records
        tracker = listing.cursor.tracker(state)
        wanted = set(self.account.only_clients) if self.account.only_clients else None
        retry = set(unmapped_state(state).get("client", {}))
        per_client = self.api.invoices.per_client
        targets: list[str] = []
        for page, listed in pages:
            targets.extend(i for i in (r.id for r in listed) if i)
            if wanted is not None:
                listed = [r for r in listed if (r.id or "?") in wanted]
            if not per_client:
                stats.clients_total = walk.records
            changed: list[tuple[Record, dict[str, Any]]] = []
            for record, row in records.map_clients(listed, self._context(label, page)):
                client_id = row["client_id"]
                self.names[client_id] = row["name"]
                if not per_client:
                    stats.add(clients_done=1)
                if tracker is not None:
                    tracker.observe(client_id, row["updated_at"])
                    if not (tracker.is_changed(client_id, row["updated_at"]) or client_id in retry):
                        continue
                changed.append((record, row))
            stats.add(clients=records.write_clients(changed))
            yield from self.writer.ready()
        if tracker is not None:
            tracker.commit()
        listing.cursor.listed(state, listed_at)
        return self._targets(targets)

    # --- invoices -------------------------------------------------------------------------

    def _write_invoices(
        self, client: ApiClient, state: dict[str, Any], label: str, targets: list[str]
    ) -> Iterator[Any]:
        listing, stats = self.api.invoices, self.stats
        tracker = listing.cursor.tracker(state)
        retry = set(unmapped_state(state).get("invoice", {}))
        known = dict(state.get("client_names") or {}) if self.api.mapping.invoice_client else None
        stable = True
        sweep: Sweep | None = None  # the sweep of per-client listings committed in batches
        full_sweep = False  # an incremental account-wide listing read in full (deletions)
        resumed = False
        if listing.per_client:
            sweep = self._sweep(state, label, listing)
            if sweep is not None:
                targets = sweep.remaining(targets)
            stats.clients_total = len(targets)

            walks: dict[str, Walk] = {}

            def documents(client_id: str) -> Iterator[Page]:
                walks[client_id] = Walk()
                return self._pages(client, listing, {}, walks[client_id], client_id=client_id)

            unlisted: list[BillingError] = []
            for client_id, pages in bounded_streams(documents, targets, self.concurrency):
                failure: BillingError | None = None
                try:
                    for page, records in pages:
                        yield from self._write_page(page, records, label, tracker, retry, known)
                except NotFoundError:
                    stats.skip("client not found (HTTP 404) when listing its documents", client_id)
                except (HttpStatusError, UnreachableError) as exc:
                    if not _passing(exc):
                        raise
                    failure = exc
                    unlisted.append(exc)
                    self._skip_client(client_id, exc)
                else:
                    walk = walks.pop(client_id)
                    stable = stable and walk.stable
                    self._note_listed(INVOICES, walk, client_id, walk.stable and listing.complete)
                walks.pop(client_id, None)
                stats.add(clients_done=1)
                if sweep is not None and sweep.finished(client_id, listed=failure is None):
                    yield from self._commit_batch(state, label, sweep, tracker, stable)
            if unlisted and len(unlisted) == len(targets) and not (sweep is not None and sweep.resumed):
                raise unlisted[0]  # no client could be listed: the API is down, not one client
            listings_stable = stable
            # A client not listed keeps every cursor where it is: the next run reads it again.
            stable = stable and not unlisted
            if sweep is not None:
                stable = stable and sweep.stable
                resumed = sweep.resumed
                if unlisted and len(unlisted) < len(targets):
                    # Keep the sweep open without the clients not listed: the next run lists
                    # only those (and whatever else it has not finished), never takes them as done.
                    sweep.commit_batch(state, tracker, listings_stable)
                else:
                    # Done, or only clients that failed again are left: the next run starts a new
                    # sweep over every client (the cursor, not moved, still covers what they hold).
                    sweep.complete(state)
        else:
            full_sweep = self._sweep_due(listing, state)
            walk = Walk(seen=set())
            params = {} if full_sweep else listing.cursor.params(state)
            for page, records in self._pages(client, listing, params, walk):
                yield from self._write_page(page, records, label, tracker, retry, known)
            stable = walk.stable
            complete = stable and (full_sweep or not listing.cursor.incremental)
            self._note_listed(INVOICES, walk, ACCOUNT, complete, state, full_sweep, int(self.listed.at.timestamp()))
        if tracker is not None:
            if stable and sweep is not None:
                sweep.commit_cursor(state, tracker, listing.cursor.state_key)
            elif stable:
                tracker.commit()
            else:
                # Pages shifted under the scan: a record may have been missed, so the mark stays
                # and the next run looks again at everything changed since the last good one.
                log.warning(
                    "%s [%s]: the listing changed while it was read; the cursor was not moved", self.api.provider, label
                )
        # A resumed sweep did not list the clients an earlier run finished, and a listing narrowed
        # by the account's filters (its statuses, its chosen clients) did not list every record:
        # neither says what no longer exists, nor that a record waiting unmapped is gone.
        self.invoices_complete = (
            stable
            and (full_sweep or not listing.cursor.incremental)
            and not resumed
            and listing.complete
            and not self.account.only_clients
        )
        # `pipeline_runs.listed` (docs/checks.md): the account's invoices, known from a complete listing only.
        stats.listed_invoices = len(self.listed.ids.get(INVOICES, ())) if self.invoices_complete else None
        if known is not None and not resumed:
            state["client_names"] = self.names
        elif known is not None:  # the names this run's clients' invoices were written with
            state.setdefault("client_names", {}).update({c: self.names.get(c) for c in targets})

    def _write_page(
        self,
        page: Any,
        records: list[Record],
        label: str,
        tracker: Tracker | None,
        retry: set[str],
        known: Mapping[str, Any] | None,
    ) -> Iterator[Any]:
        """One page: decide from the cursor what changed, map that at once, write what mapped
        and keep what did not."""
        stats, failed = self.stats, self.records.failed["invoice"]
        context = self._context(label, page)
        todo: list[Record] = []
        stamps: list[dt.datetime | None] = []
        for record in records:
            value = record.value
            if type(value) is not dict:
                self.records.fail(record, NOT_AN_OBJECT, None)
                if tracker is not None:
                    tracker.hold(None)
                continue
            if tracker is not None:
                record_id = record.id or ""
                updated_at = self._updated_at(value, context)
                tracker.observe(record_id, updated_at)
                renamed = known is not None and self._renamed(value, known)
                if not (tracker.is_changed(record_id, updated_at) or record_id in retry or renamed):
                    stats.add(unchanged=1)
                    continue
                stamps.append(updated_at)
            todo.append(record)
        yield from self.records.write(todo, context)
        if tracker is not None:
            # A record that could not be mapped never moves a server-side cursor past itself.
            for record, updated_at in zip(todo, stamps, strict=True):
                if record.key in failed:
                    tracker.hold(updated_at)

    def _sweep(self, state: dict[str, Any], label: str, listing: Listing) -> Sweep | None:
        """The sweep of per-client listings when the run commits in batches (sweep.py): only
        with a policy that moves no server-side mark (`CursorPolicy.batchable`)."""
        size = self.account.batch_clients
        if not size or not listing.cursor.batchable:
            return None
        only = sorted(self.account.only_clients or [])
        listed = fingerprint(listing.path, listing.params, listing.json, only)
        return Sweep(state, size, listed, f"{self.api.provider} [{label}]")

    def _commit_batch(
        self, state: dict[str, Any], label: str, sweep: Sweep, tracker: Tracker | None, stable: bool
    ) -> Iterator[Any]:
        """End a batch: its rows, its unmapped records and the sweep's progress go out together
        (one load package), then `BATCH_END`; the next batch's extract gets this same state."""
        yield from self._keep_unmapped(state, label, "invoice", False, count=False)
        yield from self.writer.flush()
        batch = sweep.commit_batch(state, tracker, stable)
        self.observer.keep(state)
        if self.api.mapping.invoice_client is not None:
            # The names these clients' invoices were written with (see `_renamed`).
            names: dict[str, Any] = state.setdefault("client_names", {})
            names.update({client_id: self.names.get(client_id) for client_id in batch})
        yield BATCH_END
        self.writer.new_extract()
        self.states.renew(label, state)

    def _targets(self, listed: list[str]) -> list[str]:
        only = self.account.only_clients
        if not only:
            return listed
        known = set(listed)
        # Requested clients the listing does not hold are still asked for: the API says 404.
        return [c for c in only if c in known] + [c for c in only if c not in known]

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
        if not listing.cursor.incremental or not listing.complete:
            return False
        key = listing.cursor.state_key
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
        walk: Walk,
        scope: str | None,
        complete: bool,
        state: dict[str, Any] | None = None,
        sweep: bool = False,
        listed_at: int = 0,
    ) -> None:
        """Note what a listing held for finding deletions; a complete sweep also moves its mark."""
        listing = self.api.clients if table == CLIENTS else self.api.invoices
        self.listed.add(table, walk.seen, scope, complete and listing.complete)
        if sweep and complete and state is not None:
            state.setdefault(SWEPT_PENDING, {})[listing.cursor.state_key] = listed_at
            self.listed.swept = True

    def _skip_client(self, client_id: str, error: BillingError) -> None:
        """A client whose documents could not be listed after retries: reported, read again by
        the next run, and none of its rows taken as deleted."""
        status = getattr(error, "status", None)
        why = f"HTTP {status}" if status else "no answer"
        self.stats.skip(f"documents not listed ({why} after retries); read again next run", client_id)
        self.listed.unlisted[client_id] = error.describe()

    # --- listings -------------------------------------------------------------------------

    def _pages(
        self, client: ApiClient, listing: Listing, extra: Mapping[str, Any], walk: Walk, client_id: str = ""
    ) -> Iterator[Page]:
        """Every page of a listing as it arrives: its context and its records (a record seen on
        an earlier page, or one the listing does not keep, left out), noting what it held in `walk`."""
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
        seen, keep = walk.seen, listing.keep
        try:
            for page in pages:
                stop.check()  # between two pages: a stop request ends the listing here
                walk.pages += 1
                if listing.total_path:
                    walk.totals.add(dig(page.response.data, listing.total_path))
                context = listing.page_context(page.response.data) if listing.page_context else None
                kept: list[Record] = []
                for record in page.items:
                    if keep is not None and not keep(record.value):
                        continue
                    record_id = record.id
                    if record_id is not None:
                        if record_id in seen:
                            continue
                        seen.add(record_id)
                    kept.append(record)
                walk.records += len(kept)
                yield context, kept
        except HttpStatusError as exc:
            hint = listing.status_hints.get(exc.status or 0)
            if hint is None:
                raise
            raise HttpStatusError(exc.provider, exc.account, exc.message, hint, status=exc.status, url=exc.url) from exc

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
            return self._lookups[name]

    # --- the HTTP client ------------------------------------------------------------------

    def _client(self, stack: ExitStack) -> ApiClient:
        api, account = self.api, self.account
        label = account.label or ""
        secrets = api.auth.secrets
        hint = config_hint(api.provider, [s.name for s in secrets]) + (f"; {api.auth_help}" if api.auth_help else "")
        for setting in secrets:
            value = account.secrets.get(setting.name)
            require(api.provider, account.label, value, setting.name)
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
        _secret(account, scheme.client_id),
        _secret(account, scheme.client_secret),
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


def _secret(account: Account, setting: Setting) -> str:
    return str(account.secrets[setting.name]).strip()


def _chain(held: list[Page], rest: Iterator[Page]) -> Iterator[Page]:
    yield from held
    yield from rest


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


def unmapped_state(state: MutableMapping[str, Any]) -> dict[str, dict[str, str]]:
    """record type → record key → when it was first seen unmapped, in the account's state."""
    found: dict[str, dict[str, str]] = state.setdefault("unmapped", {})
    return found


def _path_segment(value: str) -> str:
    return quote(value, safe="")
