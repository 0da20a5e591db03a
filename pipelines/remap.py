"""`billing-elt remap [PROVIDER[:LABEL]]`: the canonical rows derived again from the payloads the
warehouse stores, with the current mapping code and no API call (docs/configuration.md, command
table; docs/canonical-model.md, `raw` and `unmapped_records`).

For every selected provider account (every account the warehouse holds when none is named):

1. its stored payloads are read: the `raw` of its `clients` and `invoices` rows and of its
   `unmapped_records` (where a record is in both, the unmapped payload is the newer one: a load
   that cannot map a record keeps its old row and the new payload beside it);
2. they are mapped through the provider's declared mappers by the driver's own `RecordWriter`
   (a page mapper, `Mappers.invoice_page`, included), with the inputs the loads kept
   (`sources/shared/inputs.py`): the account label, the clients' names (from the clients mapped
   now), the account's options, lookup values and page contexts;
3. the result is compared with the stored rows, and only what differs is written, through dlt
   with the same hints and merge as a load: so the tables end up as a fresh load of the same
   payloads would write them. A record that maps now leaves `unmapped_records`; one that no longer
   maps goes there (its payload kept) and its canonical rows are removed. A record whose inputs
   were not kept is left as it is and reported (exit 1), never mapped with a guess.

Nothing changed means nothing written: a second remap changes nothing. It takes the run lock like
a load and refreshes the views when it wrote something.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dlt
from dlt.extract.source import DltSource

from pipelines import config
from pipelines.failures import Stopped, Where, check_duckdb_file, check_pipelines_dir, explain, stop_signal
from pipelines.lock import LockHeld
from pipelines.registry import discover
from pipelines.run import (
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_USAGE,
    _account_to_reset,
    _cannot_lock,
    _cannot_open,
    check_warehouse,
    delete_loaded_packages,
    describe_target,
    finish_interrupted_load,
    locked,
    make_pipeline,
    new_run_id,
    tidy_local_state,
    version,
    where,
)
from pipelines.views import refresh_after_run, table_columns
from pipelines.warehouse import loader_file_format
from sources.shared.declaration import Api, Context
from sources.shared.driver import RecordWriter, _unmapped_state, record_key
from sources.shared.inputs import MissingInput, StoredInputs
from sources.shared.model import (
    CLIENTS,
    INVOICE_ITEMS,
    INVOICES,
    TOMBSTONE,
    UNMAPPED,
    MappedInvoice,
    TableWriter,
    apply_contract_rules,
    column_names,
)
from sources.shared.provider import Provider
from sources.shared.redact import redact
from sources.shared.stats import RunStats
from sources.shared.values import ValueProblem, dumps, loads

log = logging.getLogger("billing.run")

# Records mapped at once (one call of a page mapper): the size of a typical API page or more.
GROUP = 1_000
# Columns a load sets from what it saw of the listing, not from the payload: a remap keeps them.
KEPT_COLUMNS = ("deleted_at",)
# Keys per DELETE statement.
DELETE_CHUNK = 500

RECORD_TABLES = {"invoice": INVOICES, "client": CLIENTS}
CANONICAL = (INVOICES, INVOICE_ITEMS, CLIENTS)


def declaration(provider: Provider) -> Api | None:
    """The `Api` the provider's package declares (the one its source runs), or None for a provider
    written without the shared driver (it cannot be remapped)."""
    import importlib

    package = importlib.import_module(provider.source.__module__)
    return next((v for v in vars(package).values() if isinstance(v, Api)), None)


# --- what a remap finds -------------------------------------------------------------------------


@dataclass
class Changes:
    """Rows of one table: changed (same key, other values), added and removed."""

    changed: int = 0
    added: int = 0
    removed: int = 0

    def __bool__(self) -> bool:
        return bool(self.changed or self.added or self.removed)

    def line(self) -> str:
        return f"{self.changed:,} changed · {self.added:,} added · {self.removed:,} removed"


@dataclass
class AccountRemap:
    """What the remap of one provider account found, and what it will write."""

    provider: str
    account: str
    records: Counter[str] = field(default_factory=Counter)  # record type → payloads mapped again
    tables: dict[str, Changes] = field(default_factory=lambda: {t: Changes() for t in CANONICAL})
    resolved: int = 0
    new_unmapped: int = 0
    reason_changed: int = 0
    # What could not be remapped: the missing input → record type → record keys.
    missing: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    write_invoices: list[MappedInvoice] = field(default_factory=list)
    write_clients: list[dict[str, Any]] = field(default_factory=list)
    write_unmapped: list[dict[str, Any]] = field(default_factory=list)
    delete_invoices: list[str] = field(default_factory=list)
    delete_clients: list[str] = field(default_factory=list)
    unmapped_now: dict[str, dict[str, str]] = field(default_factory=dict)  # type → key → first seen
    unmapped_gone: dict[str, list[str]] = field(default_factory=dict)  # type → keys

    @property
    def name(self) -> str:
        return f"{self.provider} [{self.account}]"

    @property
    def changed(self) -> bool:
        return bool(
            any(self.tables.values())
            or self.resolved
            or self.new_unmapped
            or self.reason_changed
            or self.write_invoices
            or self.write_clients
        )

    def report(self) -> list[str]:
        done = ", ".join(f"{n:,} {t}{'s' if n != 1 else ''}" for t, n in sorted(self.records.items())) or "nothing"
        if not self.changed:
            return [f"{self.name}: {done} mapped again from stored payloads; nothing changed"]
        lines = [f"{self.name}: {done} mapped again from stored payloads"]
        for table, changes in self.tables.items():
            lines.append(f"  {table:<17} {changes.line()}")
        unmapped = f"{self.resolved:,} resolved · {self.new_unmapped:,} new"
        if self.reason_changed:
            unmapped += f" · {self.reason_changed:,} with another reason"
        lines.append(f"  {UNMAPPED:<17} {unmapped}")
        return lines

    def missing_paragraph(self) -> str | None:
        if not self.missing:
            return None
        parts = []
        for what, by_type in self.missing.items():
            for record_type, keys in by_type.items():
                examples = ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else "")
                parts.append(f"{len(keys):,} {record_type}(s) ({examples}) need {what}")
        label = f"{self.provider}:{self.account}"
        return (
            f"{self.name}: not remapped, their rows left as they are: {'; '.join(parts)}, which the load that "
            "wrote them did not keep (loads keep it since remap exists). A load keeps it for every record it "
            f"writes: run `billing-elt load` (PROVIDERS={label}) and remap again; `billing-elt reset {label}` "
            "followed by a load rewrites every record of the account."
        )


# --- reading the warehouse ---------------------------------------------------------------------


@dataclass
class Stored:
    """One account's stored rows, by key, as the warehouse holds them (canonical columns only)."""

    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)  # invoice id → line number → row
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    unmapped: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (type, key) → row


class Warehouse:
    """Reads what the dataset stores through dlt's SQL client (any SQL destination)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.columns = {t: table_columns(client, t) for t in (INVOICES, INVOICE_ITEMS, CLIENTS, UNMAPPED)}

    def accounts(self) -> dict[str, set[str]]:
        """provider → the accounts any table holds rows of."""
        found: dict[str, set[str]] = {}
        for table, columns in self.columns.items():
            if not columns:
                continue
            rows = self.client.execute_sql(
                f"SELECT DISTINCT provider, account FROM {self.client.make_qualified_table_name(table)}"
            )
            for provider, account in rows or []:
                found.setdefault(str(provider), set()).add(str(account))
        return found

    def _select(self, table: str, wanted: Sequence[str], provider: str, account: str) -> list[dict[str, Any]]:
        present = self.columns[table]
        if not present:
            return []
        names = [c for c in wanted if c in present]
        # JSON as its text, so that numbers keep every digit (a driver would decode them as floats).
        select = ", ".join("CAST(raw AS TEXT)" if c == "raw" else c for c in names)
        qualified = self.client.make_qualified_table_name(table)
        rows = self.client.execute_sql(
            f"SELECT {select} FROM {qualified} WHERE provider = %s AND account = %s", provider, account
        )
        return [dict(zip(names, row, strict=True)) for row in rows or []]

    def stored(self, provider: str, account: str) -> Stored:
        stored = Stored()
        for row in self._select(INVOICES, [*_columns(INVOICES), *KEPT_COLUMNS], provider, account):
            stored.invoices[row["invoice_id"]] = row
        for row in self._select(INVOICE_ITEMS, _columns(INVOICE_ITEMS), provider, account):
            stored.lines.setdefault(row["invoice_id"], {})[int(row["line_number"])] = row
        for row in self._select(CLIENTS, [*_columns(CLIENTS), *KEPT_COLUMNS], provider, account):
            stored.clients[row["client_id"]] = row
        for row in self._select(UNMAPPED, _columns(UNMAPPED), provider, account):
            stored.unmapped[(row["record_type"], row["record_key"])] = row
        return stored


def _columns(table: str) -> list[str]:
    return [c for c in column_names(table) if c != TOMBSTONE]


# --- mapping again ------------------------------------------------------------------------------


class _Collector(TableWriter):
    """A `TableWriter` that keeps the mapped invoices instead of building Arrow batches: remap
    compares them with the stored rows before anything is written."""

    def __init__(self) -> None:
        super().__init__()
        self.invoices: list[MappedInvoice] = []

    def add_invoice(self, mapped: MappedInvoice) -> Iterator[Any]:
        self.invoices.append(mapped)
        return iter(())


def remap_account(api: Api, account: str, stored: Stored, inputs: StoredInputs) -> AccountRemap:
    """Map one account's stored payloads again and compare the result with its stored rows."""
    result = AccountRemap(api.provider, account)
    options = inputs.options()

    def context(page: Any, names: Mapping[str, str | None]) -> Context:
        return Context(api.provider, account, page, names, options, inputs.lookup)

    # Clients first: invoices copy their client's name from them, as in a load.
    clients, client_problems, untouched_clients = _map_clients(api, stored, inputs, context, result)
    names = {row["client_id"]: row["name"] for row in clients.values()}
    invoices, invoice_problems, untouched_invoices = _map_invoices(api, stored, inputs, context, names, result)

    _compare_clients(stored, clients, untouched_clients, result)
    _compare_invoices(stored, invoices, untouched_invoices, result)
    _compare_unmapped(stored, {"client": client_problems, "invoice": invoice_problems}, result)
    return result


def _payloads(stored: Stored, record_type: str) -> dict[str, tuple[Any, str | None]]:
    """record key → (payload, the key of the canonical row it came from), the unmapped payload
    winning over the canonical row's (it is the newer one)."""
    table = RECORD_TABLES[record_type]
    rows = stored.invoices if table == INVOICES else stored.clients
    found: dict[str, tuple[Any, str | None]] = {}
    for row_key, row in rows.items():
        if row.get("raw") is None:
            continue
        payload = loads(row["raw"])
        found[record_key(payload)] = (payload, row_key)
    for (kind, key), row in stored.unmapped.items():
        if kind == record_type and row.get("raw") is not None:
            previous = found.get(key)
            found[key] = (loads(row["raw"]), previous[1] if previous else None)
    return found


def _note_missing(result: AccountRemap, what: str, record_type: str, key: str) -> None:
    result.missing.setdefault(what, {}).setdefault(record_type, []).append(key)


def _page(api: Api, record_type: str, key: str, inputs: StoredInputs) -> Any:
    listing = api.invoices if record_type == "invoice" else api.clients
    if listing.page_context is None:
        return None
    return inputs.context(record_type, key, listing.restore_context)


def _map_clients(
    api: Api,
    stored: Stored,
    inputs: StoredInputs,
    context: Callable[[Any, Mapping[str, str | None]], Context],
    result: AccountRemap,
) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[str, Any]], set[str]]:
    """Mapped client rows by client id, problems by record key, and the ids of stored rows left alone."""
    mapped: dict[str, dict[str, Any]] = {}
    problems: dict[str, tuple[str, Any]] = {}
    untouched: set[str] = set()
    for key, (payload, row_key) in _payloads(stored, "client").items():
        result.records["client"] += 1
        try:
            row = api.mapping.client(payload, context(_page(api, "client", key, inputs), {}))
        except ValueProblem as problem:
            problems[key] = (str(problem), payload)
            continue
        except MissingInput as missing:
            _note_missing(result, missing.what, "client", key)
            untouched.update(k for k in (row_key, key) if k)
            continue
        mapped[row["client_id"]] = dict(apply_contract_rules(CLIENTS, row))
    return mapped, problems, untouched


def _map_invoices(
    api: Api,
    stored: Stored,
    inputs: StoredInputs,
    context: Callable[[Any, Mapping[str, str | None]], Context],
    names: Mapping[str, str | None],
    result: AccountRemap,
) -> tuple[dict[str, MappedInvoice], dict[str, tuple[str, Any]], set[str]]:
    """Mapped invoices by invoice id, problems by record key, and the ids of stored rows left alone.

    Records go through the driver's `RecordWriter` a group at a time, grouped by the page context
    they were loaded with, so that a page mapper maps them as it would a page."""
    collector = _Collector()
    writer = RecordWriter(api, collector, RunStats(api.provider, result.account))
    untouched: set[str] = set()
    groups: dict[str, tuple[Any, list[tuple[str, Any, str | None]]]] = {}
    for key, (payload, row_key) in _payloads(stored, "invoice").items():
        result.records["invoice"] += 1
        try:
            page = _page(api, "invoice", key, inputs)
        except MissingInput as missing:
            _note_missing(result, missing.what, "invoice", key)
            untouched.update(k for k in (row_key, key) if k)
            continue
        groups.setdefault(dumps(_jsonable(page)), (page, []))[1].append((key, payload, row_key))
    for page, members in groups.values():
        ctx = context(page, names)
        for start in range(0, len(members), GROUP):
            group = members[start : start + GROUP]
            try:
                _drain(writer.write([p for _, p, _ in group], ctx, [k for k, _, _ in group]))
            except MissingInput:
                # One record lacks an input: map them one by one to tell which.
                for key, payload, row_key in group:
                    try:
                        _drain(writer.write([payload], ctx, [key]))
                    except MissingInput as missing:
                        _note_missing(result, missing.what, "invoice", key)
                        untouched.update(k for k in (row_key, key) if k)
    mapped: dict[str, MappedInvoice] = {}
    for invoice in collector.invoices:
        row = dict(apply_contract_rules(INVOICES, invoice.invoice))
        items = [dict(apply_contract_rules(INVOICE_ITEMS, item)) for item in invoice.items]
        mapped[row["invoice_id"]] = MappedInvoice(row, items)
    return mapped, dict(writer.failed), untouched


def _jsonable(value: Any) -> Any:
    from sources.shared.inputs import to_stored

    return to_stored(value)


def _drain(items: Iterator[Any]) -> None:
    for _ in items:
        pass


# --- comparing --------------------------------------------------------------------------------


def _same(derived: Any, stored: Any, column: str) -> bool:
    if column == "raw":
        if derived is None or stored is None:
            return derived is stored
        if isinstance(stored, str) and derived == stored:
            return True
        return bool(loads(derived) == (loads(stored) if isinstance(stored, str) else stored))
    if derived is None or stored is None:
        return derived is None and stored is None
    if isinstance(derived, dt.datetime) and isinstance(stored, dt.datetime):
        if stored.tzinfo is None:
            stored = stored.replace(tzinfo=dt.UTC)
        return bool(derived == stored)
    return bool(derived == stored)


def _differs(table: str, derived: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    return any(not _same(derived.get(c), stored.get(c), c) for c in _columns(table) if c not in KEPT_COLUMNS)


def _keep(derived: dict[str, Any], stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """The derived row with the columns a load sets from the listing kept as stored."""
    if stored is None:
        return derived
    return {**derived, **{c: stored[c] for c in KEPT_COLUMNS if c in stored and c not in derived}}


def _compare_clients(
    stored: Stored, derived: dict[str, dict[str, Any]], untouched: set[str], result: AccountRemap
) -> None:
    changes = result.tables[CLIENTS]
    for client_id, row in derived.items():
        before = stored.clients.get(client_id)
        if before is None:
            changes.added += 1
        elif _differs(CLIENTS, row, before):
            changes.changed += 1
        else:
            continue
        result.write_clients.append(_keep(row, before))
    for client_id in stored.clients:
        if client_id not in derived and client_id not in untouched:
            changes.removed += 1
            result.delete_clients.append(client_id)


def _compare_invoices(
    stored: Stored, derived: dict[str, MappedInvoice], untouched: set[str], result: AccountRemap
) -> None:
    invoices, lines = result.tables[INVOICES], result.tables[INVOICE_ITEMS]
    for invoice_id, mapped in derived.items():
        before = stored.invoices.get(invoice_id)
        old_lines = stored.lines.get(invoice_id, {})
        new_lines = {int(item["line_number"]): item for item in mapped.items}
        line_changes = Changes(
            changed=sum(
                1 for n, item in new_lines.items() if n in old_lines and _differs(INVOICE_ITEMS, item, old_lines[n])
            ),
            added=sum(1 for n in new_lines if n not in old_lines),
            removed=sum(1 for n in old_lines if n not in new_lines),
        )
        if before is None:
            invoices.added += 1
        elif _differs(INVOICES, mapped.invoice, before):
            invoices.changed += 1
        elif not line_changes:
            continue
        lines.changed += line_changes.changed
        lines.added += line_changes.added
        lines.removed += line_changes.removed
        result.write_invoices.append(MappedInvoice(_keep(mapped.invoice, before), mapped.items))
    for invoice_id in stored.invoices:
        if invoice_id not in derived and invoice_id not in untouched:
            invoices.removed += 1
            lines.removed += len(stored.lines.get(invoice_id, {}))
            result.delete_invoices.append(invoice_id)
    # Lines whose invoice row is gone (nothing a load leaves): removed with their invoice id.
    for invoice_id, old in stored.lines.items():
        if invoice_id not in stored.invoices and invoice_id not in derived and invoice_id not in untouched:
            lines.removed += len(old)
            result.delete_invoices.append(invoice_id)


def _compare_unmapped(
    stored: Stored, problems: Mapping[str, Mapping[str, tuple[str, Any]]], result: AccountRemap
) -> None:
    now = dt.datetime.now(dt.UTC)
    missing = {key for by_type in result.missing.values() for keys in by_type.values() for key in keys}
    keys = {"provider": result.provider, "account": result.account}
    for record_type, failed in problems.items():
        for key, (reason, payload) in failed.items():
            before = stored.unmapped.get((record_type, key))
            raw = dumps(payload)
            if before is None:
                result.new_unmapped += 1
                first_seen, last_seen = now, now
            elif before.get("reason") != reason or not _same(raw, before.get("raw"), "raw"):
                result.reason_changed += 1
                first_seen, last_seen = before["first_seen_at"], before["last_seen_at"]
            else:
                result.unmapped_now.setdefault(record_type, {})[key] = _iso(before["first_seen_at"])
                continue
            result.unmapped_now.setdefault(record_type, {})[key] = _iso(first_seen)
            result.write_unmapped.append(
                {
                    **keys,
                    "record_type": record_type,
                    "record_key": key,
                    "reason": reason,
                    "first_seen_at": first_seen,
                    "last_seen_at": last_seen,
                    "raw": raw,
                }
            )
    for record_type, key in stored.unmapped:
        if key not in problems.get(record_type, {}) and key not in missing:
            result.resolved += 1
            result.unmapped_gone.setdefault(record_type, []).append(key)
            result.write_unmapped.append({**keys, "record_type": record_type, "record_key": key, TOMBSTONE: True})


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    return str(value)


# --- writing ----------------------------------------------------------------------------------


def remapped_source(provider: str, found: Sequence[AccountRemap]) -> DltSource:
    """The changed rows of one provider's accounts as a dlt source of the provider's name (its
    schema, its state), written with the canonical tables' hints like a load; the accounts'
    `unmapped` state (driver.py: the records every load tries again) moves with the rows."""

    def rows() -> Iterator[Any]:
        state = dlt.current.source_state()
        writer = TableWriter()
        for account in found:
            for row in account.write_clients:
                yield from writer.add_client(row)
            for mapped in account.write_invoices:
                yield from writer.add_invoice(mapped)
            for row in account.write_unmapped:
                yield from writer.add_unmapped(row)
            known = _unmapped_state(state.setdefault(account.account, {}))
            for record_type, first_seen in account.unmapped_now.items():
                known.setdefault(record_type, {}).update(first_seen)
            for record_type, gone in account.unmapped_gone.items():
                for key in gone:
                    known.get(record_type, {}).pop(key, None)
        yield from writer.flush()

    resource = dlt.resource(rows, name=f"{provider}_billing")
    return DltSource(dlt.Schema(provider), provider, [resource])


def delete_removed(client: Any, found: Sequence[AccountRemap]) -> None:
    """Delete the canonical rows of records that no longer map (their payloads are in
    `unmapped_records` by now), in one transaction."""
    with client.begin_transaction():
        for account in found:
            for tables, column, ids in (
                ((INVOICE_ITEMS, INVOICES), "invoice_id", account.delete_invoices),
                ((CLIENTS,), "client_id", account.delete_clients),
            ):
                for table in tables:
                    qualified = client.make_qualified_table_name(table)
                    for start in range(0, len(ids), DELETE_CHUNK):
                        chunk = ids[start : start + DELETE_CHUNK]
                        marks = ", ".join(["%s"] * len(chunk))
                        client.execute_sql(
                            f"DELETE FROM {qualified} WHERE provider = %s AND account = %s AND {column} IN ({marks})",
                            account.provider,
                            account.account,
                            *chunk,
                        )


# --- the command ------------------------------------------------------------------------------


def _selection(providers: dict[str, Provider], requested: str | None) -> tuple[dict[str, list[str] | None], bool]:
    """provider → account values asked for (None: every stored account), and whether any was named.

    Raises:
        config.UsageError: an unknown provider or a malformed label.
    """
    chosen, wanted, explicit = config.select_accounts(providers, requested)
    selection: dict[str, list[str] | None] = {}
    for provider in chosen:
        labels = wanted.get(provider.name)
        selection[provider.name] = None if labels is None else [_account_to_reset(provider, lb) for lb in labels]
    return selection, explicit


def remap(requested: str | None = None, *, pipeline_name: str | None = None) -> int:
    """Re-derive the canonical rows of the selected provider accounts from their stored payloads
    (module docstring). Returns the exit code (docs/configuration.md)."""
    providers = discover()
    try:
        selection, explicit = _selection(providers, requested)
        name = config.pipeline_name(pipeline_name)
        target = where(name)
    except config.UsageError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    local = target.pipelines_dir / name
    if (target.database is not None and not target.database.exists()) or (
        target.database is None and not local.exists()
    ):
        log.info("nothing to remap: no load has run into %s yet", describe_target(target))
        return EXIT_OK
    clash = config.duckdb_name_clash(config.destination_type(), str(target.database or ""))
    if clash is not None:
        log.error("%s", clash)
        return EXIT_USAGE
    try:
        with locked(target, name):
            return _remap_locked(target, name, providers, selection, explicit)
    except LockHeld as held:
        log.error("%s", held)
        return EXIT_LOCKED
    except Stopped as stopped:
        log.error(
            "stopped by signal %d: the remap did not complete; what it committed stays, run it again", stopped.signum
        )
        return 128 + stopped.signum
    except OSError as exc:
        log.error("%s", explain(exc, target) or _cannot_lock(exc))
        return EXIT_FAILED


def _remap_locked(
    target: Where,
    name: str,
    providers: dict[str, Provider],
    selection: dict[str, list[str] | None],
    explicit: bool,
) -> int:
    run_id = new_run_id()
    log.info(
        "billing-elt %s · remap %s · %s · dataset %s · pipeline %s (%s) · from stored payloads, no API call",
        version(),
        run_id,
        describe_target(target),
        config.dataset_name(),
        name,
        target.pipelines_dir / name,
    )
    unwritable = check_pipelines_dir(target) or check_duckdb_file(target)
    if unwritable is not None:
        log.error("%s", unwritable)
        return EXIT_FAILED
    working_dir = target.pipelines_dir / name
    for note in tidy_local_state(working_dir):
        log.warning("%s", note)
    try:
        pipeline = make_pipeline(name)
        check_warehouse(pipeline)
        # An interrupted run's rows land first: remap reads what the warehouse holds.
        if not finish_interrupted_load(pipeline, target):
            return EXIT_FAILED
        pipeline.sync_destination()
        with pipeline.sql_client() as client:
            if not client.has_dataset():
                log.info("nothing to remap: %s holds no %s dataset yet", describe_target(target), pipeline.dataset_name)
                return EXIT_OK
            warehouse = Warehouse(client)
            chosen = _accounts(warehouse.accounts(), providers, selection, explicit)
            if isinstance(chosen, int):
                return chosen
            states = pipeline.state.get("sources", {})
            found: dict[str, list[AccountRemap]] = {}
            for provider, accounts in chosen.items():
                api = declaration(providers[provider])
                if api is None:
                    log.warning("%s declares no mapping the driver runs: its rows are left as they are", provider)
                    continue
                for account in sorted(accounts):
                    inputs = StoredInputs(states.get(provider, {}).get(account, {}))
                    found.setdefault(provider, []).append(
                        remap_account(api, account, warehouse.stored(provider, account), inputs)
                    )
    except Stopped:
        raise
    except Exception as exc:
        if stop_signal(exc) is not None:
            raise Stopped(stop_signal(exc) or 2) from None
        log.error("%s", explain(exc, target) or _cannot_open(exc))
        return EXIT_FAILED
    everything = [a for remapped in found.values() for a in remapped]
    for one in everything:
        for line in one.report():
            log.info("%s", line)
    code = _write(pipeline, target, found)
    incomplete = [p for a in everything if (p := a.missing_paragraph())]
    for paragraph in incomplete:
        log.error("%s", paragraph)
    if not any(a.changed for a in everything):
        log.info("remap %s: nothing changed, nothing written", run_id)
    delete_loaded_packages(working_dir)
    return code if code != EXIT_OK else (EXIT_FAILED if incomplete else EXIT_OK)


def _accounts(
    stored: dict[str, set[str]],
    providers: dict[str, Provider],
    selection: dict[str, list[str] | None],
    explicit: bool,
) -> dict[str, set[str]] | int:
    """The stored accounts to remap, or an exit code when a named one holds nothing."""
    chosen: dict[str, set[str]] = {}
    for provider, accounts in selection.items():
        held = stored.get(provider, set())
        if accounts is None:
            if held:
                chosen[provider] = set(held)
            elif explicit:
                log.error(
                    "nothing stored for %s: the warehouse holds %s", provider, _held(stored, providers) or "no rows yet"
                )
                return EXIT_USAGE
            continue
        absent = [a for a in accounts if a not in held]
        if absent:
            log.error(
                "nothing stored for %s: the warehouse holds %s",
                ", ".join(f"{provider} [{a}]" for a in absent),
                _held(stored, providers) or "no rows yet",
            )
            return EXIT_USAGE
        chosen.setdefault(provider, set()).update(accounts)
    for provider in sorted(set(stored) - set(providers)):
        log.warning("rows of %s: no such provider is installed here; they are left as they are", provider)
    if not chosen:
        log.info("nothing to remap: the warehouse holds no provider's rows yet")
    return chosen


def _held(stored: dict[str, set[str]], providers: dict[str, Provider]) -> str:
    return ", ".join(f"{p} [{a}]" for p in sorted(stored) if p in providers for a in sorted(stored[p]))


def _write(pipeline: dlt.Pipeline, target: Where, found: dict[str, list[AccountRemap]]) -> int:
    """Write what changed, provider by provider; refresh the views when anything was written."""
    wrote = False
    for provider, accounts in found.items():
        changed = [a for a in accounts if a.changed]
        if not changed:
            continue
        try:
            file_format = loader_file_format(pipeline.destination)
            pipeline.run(remapped_source(provider, changed), loader_file_format=file_format)
            if any(a.delete_invoices or a.delete_clients for a in changed):
                with pipeline.sql_client() as client:
                    delete_removed(client, changed)
        except Exception as exc:
            signum = stop_signal(exc)
            if signum is not None:
                raise Stopped(signum) from None
            reason = explain(exc, target) or redact(f"{type(exc).__name__}: {exc}")
            log.error("%s: the remapped rows could not be written: %s; run remap again", provider, reason)
            return EXIT_FAILED
        wrote = True
    if wrote and not refresh_after_run(pipeline):
        return EXIT_FAILED
    return EXIT_OK
