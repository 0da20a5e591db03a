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
3. the result, as Arrow tables, is compared with the stored rows (read as Arrow, joined on their
   keys in an in-memory DuckDB: `Comparison`), and only what differs is written, through dlt
   with the same hints and merge as a load: so the tables end up as a fresh load of the same
   payloads would write them. A record that maps now leaves `unmapped_records`; one that no longer
   maps goes there (its payload kept) and its canonical rows are removed. A record whose inputs
   were not kept is left as it is and reported (exit 1), never mapped with a guess.

Nothing changed means nothing written: a second remap changes nothing. It takes the run lock like
a load and refreshes the views when it wrote something.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dlt.extract.source import DltSource

from pipelines import config
from pipelines.failures import Stopped, Where, explain, stop_signal
from pipelines.lock import LockHeld
from pipelines.registry import discover
from pipelines.retry import loading
from pipelines.run import (
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_USAGE,
    cannot_lock,
    cannot_open,
    check_warehouse,
    delete_loaded_packages,
    describe_target,
    finish_interrupted_load,
    locked,
    make_pipeline,
    new_run_id,
    ready_to_write,
    stored_account,
    version,
    where,
)
from pipelines.views import refresh_after_run, table_columns
from pipelines.warehouse import loader_file_format
from sources.shared.declaration import Api, Context
from sources.shared.driver import RecordWriter, record_key, unmapped_state
from sources.shared.inputs import MissingInput, StoredInputs, to_stored
from sources.shared.model import (
    CLIENTS,
    INVOICE_ITEMS,
    INVOICES,
    PRIMARY_KEYS,
    SCHEMAS,
    TOMBSTONE,
    UNMAPPED,
    MappedInvoice,
    TableWriter,
    apply_contract_rules,
    apply_contract_rules_arrow,
    column_names,
    rows_table,
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
# Invoices read, compared and rewritten at a time.
CHUNK = 5_000
# Keys per IN (...) list.
DELETE_CHUNK = 500

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


class Spill:
    """The rows a remap will write, kept on disk (a pair of parquet files per chunk of invoices)
    from the comparison that finds them to the write: memory stays bounded however many changed,
    and no payload is mapped twice."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.files: list[tuple[Path, Path]] = []
        self.invoices = 0

    def add(self, invoices: pa.Table, items: pa.Table) -> None:
        n = len(self.files)
        pair = (self.directory / f"{n}-invoices.parquet", self.directory / f"{n}-items.parquet")
        pq.write_table(invoices, pair[0])
        pq.write_table(items, pair[1])
        self.files.append(pair)
        self.invoices += invoices.num_rows

    def tables(self) -> Iterator[tuple[pa.Table, pa.Table]]:
        for invoices, items in self.files:
            yield pq.read_table(invoices), pq.read_table(items)


@dataclass
class AccountRemap:
    """What the remap of one provider account found, and what it will write."""

    provider: str
    account: str
    inputs: StoredInputs
    names: dict[str, str | None] = field(default_factory=dict)  # client id → name, as mapped now
    records: Counter[str] = field(default_factory=Counter)  # record type → payloads mapped again
    tables: dict[str, Changes] = field(default_factory=lambda: {t: Changes() for t in CANONICAL})
    resolved: int = 0
    new_unmapped: int = 0
    reason_changed: int = 0
    # What could not be remapped: the missing input → record type → record keys.
    missing: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    rewrite: Spill | None = None  # the invoices (and their lines) to write
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
            or (self.rewrite is not None and self.rewrite.invoices)
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


Rows = dict[str, dict[str, Any]]


class Warehouse:
    """Reads what the dataset stores through dlt's SQL client (any SQL destination); invoices and
    their lines a chunk at a time, so that memory stays bounded whatever the account's size."""

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

    def _select(
        self, table: str, wanted: Sequence[str], provider: str, account: str, where: str = "", *params: Any
    ) -> list[dict[str, Any]]:
        present = self.columns[table]
        if not present:
            return []
        names = [c for c in wanted if c in present]
        # JSON as its text, so that numbers keep every digit (a driver would decode them as floats).
        select = ", ".join("CAST(raw AS TEXT)" if c == "raw" else c for c in names)
        qualified = self.client.make_qualified_table_name(table)
        rows = self.client.execute_sql(
            f"SELECT {select} FROM {qualified} WHERE provider = %s AND account = %s {where}",
            provider,
            account,
            *params,
        )
        return [dict(zip(names, row, strict=True)) for row in rows or []]

    def clients(self, provider: str, account: str) -> Rows:
        rows = self._select(CLIENTS, [*_columns(CLIENTS), *KEPT_COLUMNS], provider, account)
        return {row["client_id"]: row for row in rows}

    def unmapped(self, provider: str, account: str) -> dict[tuple[str, str], dict[str, Any]]:
        """(record type, record key) → the stored `unmapped_records` row."""
        rows = self._select(UNMAPPED, _columns(UNMAPPED), provider, account)
        return {(row["record_type"], row["record_key"]): row for row in rows}

    def _arrow(
        self, table: str, wanted: Sequence[str], provider: str, account: str, where: str = "", *params: Any
    ) -> pa.Table:
        """`_select` as an Arrow table: DuckDB's own reader on a DuckDB warehouse; elsewhere the
        rows converted with the canonical column types (so that no number passes through a float)."""
        present = self.columns[table]
        names = [c for c in dict.fromkeys(wanted) if c in present or not present]
        schema = pa.schema([SCHEMAS[table].field(c) for c in names])
        if not present:
            return schema.empty_table()
        native = getattr(self.client, "native_connection", None)
        if not isinstance(native, duckdb.DuckDBPyConnection):
            return pa.Table.from_pylist(self._select(table, names, provider, account, where, *params), schema=schema)
        select = ", ".join("CAST(raw AS TEXT) AS raw" if c == "raw" else c for c in names)
        sql = (
            f"SELECT {select} FROM {self.client.make_qualified_table_name(table)} "
            f"WHERE provider = ? AND account = ? {where.replace('%s', '?')}"
        )
        return native.sql(sql, params=[provider, account, *params]).to_arrow_table()

    def invoice_chunks(self, provider: str, account: str, size: int = CHUNK) -> Iterator[tuple[pa.Table, pa.Table]]:
        """The account's invoices and their lines, `size` invoices at a time in invoice id order."""
        after: str | None = None
        wanted = [*_columns(INVOICES), *KEPT_COLUMNS]
        while True:
            where = ("AND invoice_id > %s " if after is not None else "") + f"ORDER BY invoice_id LIMIT {int(size)}"
            rows = self._arrow(INVOICES, wanted, provider, account, where, *([after] if after is not None else []))
            if not rows.num_rows:
                return
            ids = rows.column("invoice_id")
            first, last = ids[0].as_py(), ids[-1].as_py()
            lines = self._arrow(
                INVOICE_ITEMS,
                _columns(INVOICE_ITEMS),
                provider,
                account,
                "AND invoice_id >= %s AND invoice_id <= %s",
                first,
                last,
            )
            yield rows, lines
            after = last

    def invoice_tables(self, provider: str, account: str, ids: Sequence[str]) -> tuple[pa.Table, pa.Table]:
        """The stored invoices `ids` (at least one) and their lines."""
        rows: list[pa.Table] = []
        lines: list[pa.Table] = []
        for start in range(0, len(ids), DELETE_CHUNK):
            chunk = list(ids[start : start + DELETE_CHUNK])
            where = f"AND invoice_id IN ({', '.join(['%s'] * len(chunk))})"
            rows.append(self._arrow(INVOICES, [*_columns(INVOICES), *KEPT_COLUMNS], provider, account, where, *chunk))
            lines.append(self._arrow(INVOICE_ITEMS, _columns(INVOICE_ITEMS), provider, account, where, *chunk))
        return pa.concat_tables(rows), pa.concat_tables(lines)


@functools.cache
def _columns(table: str) -> tuple[str, ...]:
    return tuple(c for c in column_names(table) if c != TOMBSTONE)


@functools.cache
def _compared(table: str) -> tuple[str, ...]:
    """The columns a remap compares: every canonical one but those a load sets from the listing."""
    return tuple(c for c in _columns(table) if c not in KEPT_COLUMNS)


# --- mapping again ------------------------------------------------------------------------------


class ArrowCollector(TableWriter):
    """A `TableWriter` that keeps what the driver hands it, in that order: a page's vectorised
    rows as the Arrow tables they are, an invoice the record mapper took as its rows. `tables`
    returns them as one Arrow table per canonical table, with the contract's rules applied as a
    load applies them."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[tuple[pa.Table, pa.Table] | MappedInvoice] = []

    def add_arrow(self, invoices: pa.Table, items: pa.Table) -> Iterator[Any]:
        self.parts.append((invoices, items))
        return iter(())

    def add_invoice(self, mapped: MappedInvoice) -> Iterator[Any]:
        self.parts.append(mapped)
        return iter(())

    def tables(self) -> tuple[pa.Table, pa.Table]:
        invoices: list[pa.Table] = []
        items: list[pa.Table] = []
        rows: list[MappedInvoice] = []
        for part in [*self.parts, None]:
            if isinstance(part, MappedInvoice):
                rows.append(part)
                continue
            if rows:
                invoices.append(rows_table(INVOICES, [r.invoice for r in rows]))
                items.append(rows_table(INVOICE_ITEMS, [item for r in rows for item in r.items]))
                rows = []
            if part is not None:
                invoices.append(apply_contract_rules_arrow(INVOICES, part[0]))
                items.append(apply_contract_rules_arrow(INVOICE_ITEMS, part[1]))
        self.parts = []
        empty = [SCHEMAS[INVOICES].empty_table()], [SCHEMAS[INVOICE_ITEMS].empty_table()]
        return pa.concat_tables(invoices or empty[0]), pa.concat_tables(items or empty[1])


@dataclass(frozen=True)
class Payload:
    """A stored payload: its record key and the stored invoice row it came from (None: unmapped)."""

    key: str
    record: Any
    row: str | None


@dataclass
class Derived:
    """What a chunk of payloads maps to: invoice and line rows as Arrow tables, and the payload
    each invoice row came from."""

    invoices: pa.Table
    items: pa.Table
    payloads: list[Payload]


class InvoiceMapper:
    """Maps stored invoice payloads through the driver's `RecordWriter` (so a declared page
    mapper, `Mappers.invoice_page`, maps them as it would a page), grouped by the page context
    they were loaded with; a record whose inputs were not kept is noted, never guessed.

    Args:
        api: the provider's declaration.
        remap: the account's remap: label, kept inputs, clients' names, what is missing.
    """

    def __init__(self, api: Api, remap: AccountRemap) -> None:
        self.api, self.remap = api, remap
        self.arrows = ArrowCollector()
        self.writer = RecordWriter(api, self.arrows, RunStats(api.provider, remap.account))
        self.options = remap.inputs.options()

    @property
    def problems(self) -> dict[str, tuple[str, Any]]:
        """record key → (reason, payload) of every payload that does not map."""
        return self.writer.failed

    def map(self, payloads: Sequence[Payload]) -> tuple[Derived, set[str]]:
        """What the payloads map to as Arrow tables, and the stored invoice ids whose payloads
        could not be remapped (their rows are left alone)."""
        order: list[str] = []
        self.writer.order = order
        try:
            untouched = self._map_groups(payloads, order)
        finally:
            self.writer.order = None
        by_key = {p.key: p for p in payloads}
        invoices, items = self.arrows.tables()
        return Derived(invoices, items, [by_key[k] for k in order]), untouched

    def _write(self, group: list[Payload], context: Context, order: list[str]) -> None:
        """Map one group; a group that stops at a missing input leaves none of its rows behind."""
        parts, written = len(self.arrows.parts), len(order)
        try:
            for _ in self.writer.write([p.record for p in group], context, [p.key for p in group]):
                pass
        except MissingInput:
            del self.arrows.parts[parts:], order[written:]
            raise

    def _map_groups(self, payloads: Sequence[Payload], order: list[str]) -> set[str]:
        """Map the payloads in groups that share a page context, `GROUP` at most (`order`: the
        writer's record order, kept consistent when a group stops); returns the
        stored invoice ids (and record keys) whose payloads lack a kept input."""
        remap = self.remap
        untouched: set[str] = set()
        groups: dict[str, tuple[Any, list[Payload]]] = {}
        for payload in payloads:
            try:
                page = _page(self.api, "invoice", payload.key, remap.inputs)
            except MissingInput as missing:
                _note_missing(remap, missing.what, "invoice", payload.key)
                untouched.update(k for k in (payload.row, payload.key) if k)
                continue
            groups.setdefault(dumps(to_stored(page)), (page, []))[1].append(payload)
        for page, members in groups.values():
            context = Context(self.api.provider, remap.account, page, remap.names, self.options, remap.inputs.lookup)
            for start in range(0, len(members), GROUP):
                group = members[start : start + GROUP]
                try:
                    self._write(group, context, order)
                except MissingInput:
                    # One record lacks an input: map them one by one to tell which.
                    for payload in group:
                        try:
                            self._write([payload], context, order)
                        except MissingInput as missing:
                            _note_missing(remap, missing.what, "invoice", payload.key)
                            untouched.update(k for k in (payload.row, payload.key) if k)
        return untouched


def remap_account(api: Api, account: str, warehouse: Warehouse, inputs: StoredInputs, spill: Path) -> AccountRemap:
    """Map one account's stored payloads again and compare the result with its stored rows; the
    rows to write are kept in the directory `spill`."""
    result = AccountRemap(api.provider, account, inputs, rewrite=Spill(spill))
    unmapped = warehouse.unmapped(api.provider, account)

    # Clients first: invoices copy their client's name from them, as in a load.
    stored_clients = warehouse.clients(api.provider, account)
    clients, client_problems, untouched_clients = _map_clients(api, stored_clients, unmapped, result)
    result.names = {row["client_id"]: row["name"] for row in clients.values()}
    _compare_clients(stored_clients, clients, untouched_clients, result)

    mapper = InvoiceMapper(api, result)
    compare = Comparison()
    waiting = {key: loads(row["raw"]) for (kind, key), row in unmapped.items() if kind == "invoice" and row["raw"]}
    for stored, lines in warehouse.invoice_chunks(api.provider, account):
        # Where a record is also unmapped, its unmapped payload is the newer one (mapped below).
        ids = stored.column("invoice_id").to_pylist()
        raws: list[Any] = stored.column("raw").to_pylist() if "raw" in stored.column_names else [None] * len(ids)
        kept = [i for i, (k, raw) in enumerate(zip(ids, raws, strict=True)) if k not in waiting and raw is not None]
        if len(kept) < stored.num_rows:
            stored = stored.take(kept)
        payloads = [Payload(record_key(record), record, ids[i]) for i in kept for record in [loads(raws[i])]]
        payloads = [p for p in payloads if p.key not in waiting]
        result.records["invoice"] += len(payloads)
        _compare_invoices(stored, lines, *mapper.map(payloads), result, compare)
    if waiting:
        stored, lines = warehouse.invoice_tables(api.provider, account, list(waiting))
        found = set(stored.column("invoice_id").to_pylist())
        payloads = [Payload(key, record, key if key in found else None) for key, record in waiting.items()]
        result.records["invoice"] += len(payloads)
        _compare_invoices(stored, lines, *mapper.map(payloads), result, compare)
    _compare_unmapped(unmapped, {"client": client_problems, "invoice": mapper.problems}, result)
    return result


def _note_missing(result: AccountRemap, what: str, record_type: str, key: str) -> None:
    result.missing.setdefault(what, {}).setdefault(record_type, []).append(key)


def _page(api: Api, record_type: str, key: str, inputs: StoredInputs) -> Any:
    listing = api.invoices if record_type == "invoice" else api.clients
    if listing.page_context is None:
        return None
    return inputs.context(record_type, key, listing.restore_context)


def _map_clients(
    api: Api, stored: Rows, unmapped: Mapping[tuple[str, str], Mapping[str, Any]], result: AccountRemap
) -> tuple[Rows, dict[str, tuple[str, Any]], set[str]]:
    """Mapped client rows by client id, problems by record key, and the ids of stored rows left alone."""
    payloads: dict[str, tuple[Any, str | None]] = {}
    for client_id, row in stored.items():
        if row.get("raw") is not None:
            record = loads(row["raw"])
            payloads[record_key(record)] = (record, client_id)
    for (kind, key), kept in unmapped.items():
        if kind == "client" and kept.get("raw") is not None:
            previous = payloads.get(key)
            payloads[key] = (loads(kept["raw"]), previous[1] if previous else None)
    options = result.inputs.options()
    mapped: Rows = {}
    problems: dict[str, tuple[str, Any]] = {}
    untouched: set[str] = set()
    for key, (record, row_key) in payloads.items():
        result.records["client"] += 1
        try:
            page = _page(api, "client", key, result.inputs)
            row = api.mapping.client(
                record, Context(api.provider, result.account, page, {}, options, result.inputs.lookup)
            )
        except ValueProblem as problem:
            problems[key] = (str(problem), record)
            continue
        except MissingInput as missing:
            _note_missing(result, missing.what, "client", key)
            untouched.update(k for k in (row_key, key) if k)
            continue
        mapped[row["client_id"]] = dict(apply_contract_rules(CLIENTS, row))
    return mapped, problems, untouched


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
    if isinstance(derived, dt.datetime) and isinstance(stored, dt.datetime) and stored.tzinfo is None:
        stored = stored.replace(tzinfo=dt.UTC)
    return bool(derived == stored)


def _differs(table: str, derived: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    columns = _compared(table)
    new, old = derived.get, stored.get
    # Values equal by `==` are the same by `_same` too (it only forgives more: JSON text written
    # differently, a timestamp read back without its zone), so the common case is one comparison.
    if [new(c) for c in columns] == [old(c) for c in columns]:
        return False
    return any(not _same(new(c), old(c), c) for c in columns)


def _kept(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stored values of the columns a load sets from the listing (kept by a remap)."""
    return {c: stored[c] for c in KEPT_COLUMNS if c in stored} if stored else {}


def _compare_clients(stored: Rows, derived: Rows, untouched: set[str], result: AccountRemap) -> None:
    changes = result.tables[CLIENTS]
    for client_id, row in derived.items():
        before = stored.get(client_id)
        if before is None:
            changes.added += 1
        elif _differs(CLIENTS, row, before):
            changes.changed += 1
        else:
            continue
        result.write_clients.append({**row, **_kept(before)})
    for client_id in stored:
        if client_id not in derived and client_id not in untouched:
            changes.removed += 1
            result.delete_clients.append(client_id)


class Comparison:
    """Derived and stored rows compared in an in-memory DuckDB: joined on their key, a pair
    differs when one side is absent or a compared column `IS DISTINCT FROM` the other, with the
    session in UTC so that a timestamp read back without its zone is read as `_same` reads it.
    SQL's equality is `_same`'s for every column but `raw`, whose JSON text may be written
    otherwise for the same values: a pair whose only difference is its `raw` text is decided by
    `_same`."""

    def __init__(self) -> None:
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET TimeZone = 'UTC'")

    def differences(self, table: str, derived: pa.Table, stored: pa.Table) -> list[tuple[int | None, int | None]]:
        """(derived row, stored row) indexes of every key absent on one side or whose rows differ."""
        keys = [k for k in PRIMARY_KEYS[table] if k not in ("provider", "account")]
        compared = _compared(table)
        present = set(stored.column_names)
        d = derived.select([c for c in derived.column_names if c in (*keys, *compared)])
        s = stored.select([c for c in stored.column_names if c in (*keys, *compared)])
        self.con.register("d", d.append_column("_i", pa.array(range(d.num_rows), pa.int64())))
        self.con.register("s", s.append_column("_i", pa.array(range(s.num_rows), pa.int64())))

        def distinct(columns: Sequence[str]) -> str:
            pairs = [f'd."{c}" IS DISTINCT FROM ' + (f's."{c}"' if c in present else "NULL") for c in columns]
            return " OR ".join(pairs) or "false"

        on = " AND ".join(f'd."{k}" = s."{k}"' for k in keys)
        strict, loose = [c for c in compared if c != "raw"], [c for c in compared if c == "raw"]
        query = (
            "SELECT d._i, s._i, {strict} FROM d FULL JOIN s ON {on} "
            "WHERE d._i IS NULL OR s._i IS NULL OR {strict} OR {loose}"
        )
        try:
            found = self.con.execute(query.format(on=on, strict=distinct(strict), loose=distinct(loose))).fetchall()
            pending = [(i, j) for i, j, differ in found if i is not None and j is not None and not differ]
            check = list(loose)
        except duckdb.Error:
            # Types SQL cannot compare (a column stored with another type): `_same` decides every pair.
            found = self.con.execute(query.format(on=on, strict="false", loose="true")).fetchall()
            pending = [(i, j) for i, j, _ in found if i is not None and j is not None]
            check = list(compared)
        finally:
            self.con.unregister("d")
            self.con.unregister("s")
        differ = [(i, j) for i, j, strict_differ in found if strict_differ or i is None or j is None]
        if pending:
            columns = [c for c in check if c in present]
            new = derived.select(columns).take([i for i, _ in pending]).to_pylist()
            old = stored.select(columns).take([j for _, j in pending]).to_pylist()
            differ += [
                pair
                for pair, a, b in zip(pending, new, old, strict=True)
                if any(not _same(a.get(c), b.get(c), c) for c in check)
            ]
        return differ


def _compare_invoices(
    stored: pa.Table,
    lines: pa.Table,
    derived: Derived,
    untouched: set[str],
    result: AccountRemap,
    compare: Comparison,
) -> None:
    """Compare one chunk: `stored` invoices with their `lines` against what their payloads map to."""
    invoices, items = result.tables[INVOICES], result.tables[INVOICE_ITEMS]
    new_ids, old_ids = derived.invoices.column("invoice_id").to_pylist(), stored.column("invoice_id").to_pylist()
    at = {invoice_id: i for i, invoice_id in enumerate(new_ids)}  # an id mapped twice: its last row
    stored_at = {invoice_id: j for j, invoice_id in enumerate(old_ids)}

    # Lines of the derived invoices, line by line.
    if lines.num_rows and derived.invoices.num_rows:
        ours = lines.filter(pc.is_in(lines.column("invoice_id"), value_set=derived.invoices.column("invoice_id")))
    else:
        ours = lines.slice(0, 0)
    new_line_ids, old_line_ids = derived.items.column("invoice_id"), ours.column("invoice_id")
    line_changes: dict[str, Changes] = {}
    for i, j in compare.differences(INVOICE_ITEMS, derived.items, ours):
        if i is None:
            line_changes.setdefault(old_line_ids[j].as_py(), Changes()).removed += 1
        elif j is None:
            line_changes.setdefault(new_line_ids[i].as_py(), Changes()).added += 1
        else:
            line_changes.setdefault(new_line_ids[i].as_py(), Changes()).changed += 1

    # Invoices.
    changed: set[int] = set()
    touched = {at[invoice_id] for invoice_id in line_changes}
    for i, j in compare.differences(INVOICES, derived.invoices, stored):
        if i is not None and j is not None:
            changed.add(at[new_ids[i]])
        elif i is not None:
            touched.add(at[new_ids[i]])
    touched |= changed
    written: list[int] = []
    for i in sorted(touched):
        invoice_id = new_ids[i]
        found = line_changes.get(invoice_id, Changes())
        if invoice_id not in stored_at:
            invoices.added += 1
        elif i in changed:
            invoices.changed += 1
        elif not found:
            continue
        items.changed += found.changed
        items.added += found.added
        items.removed += found.removed
        written.append(i)
    if written and result.rewrite is not None:
        rows = derived.invoices.take(written)
        for column in KEPT_COLUMNS:  # set by a load from the listing: the stored value stays
            if column in stored.column_names:
                listed, index = stored.column(column).to_pylist(), rows.schema.get_field_index(column)
                values = rows.column(column).to_pylist()
                for n, i in enumerate(written):
                    j = stored_at.get(new_ids[i])
                    values[n] = listed[j] if j is not None else values[n]
                rows = rows.set_column(index, rows.schema.field(index), pa.array(values, rows.schema.field(index).type))
        ids = pa.array([new_ids[i] for i in written], pa.string())
        result.rewrite.add(rows, derived.items.filter(pc.is_in(derived.items.column("invoice_id"), value_set=ids)))
    gone = [invoice_id for invoice_id in old_ids if invoice_id not in at and invoice_id not in untouched]
    if gone:
        counts = Counter(lines.column("invoice_id").to_pylist())
        for invoice_id in gone:
            invoices.removed += 1
            items.removed += counts.get(invoice_id, 0)
            result.delete_invoices.append(invoice_id)


def _compare_unmapped(
    stored: Mapping[tuple[str, str], Mapping[str, Any]],
    problems: Mapping[str, Mapping[str, tuple[str, Any]]],
    result: AccountRemap,
) -> None:
    now = dt.datetime.now(dt.UTC)
    missing = {key for by_type in result.missing.values() for keys in by_type.values() for key in keys}
    keys = {"provider": result.provider, "account": result.account}
    for record_type, failed in problems.items():
        for key, (reason, payload) in failed.items():
            before = stored.get((record_type, key))
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
    for record_type, key in stored:
        if key not in problems.get(record_type, {}) and key not in missing:
            result.resolved += 1
            result.unmapped_gone.setdefault(record_type, []).append(key)
            result.write_unmapped.append({**keys, "record_type": record_type, "record_key": key, TOMBSTONE: True})


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    return str(value)


# --- writing ----------------------------------------------------------------------------------


def remapped_source(pipeline: dlt.Pipeline, api: Api, found: Sequence[AccountRemap]) -> DltSource:
    """The changed rows of one provider's accounts as a dlt source of the provider's name (its
    schema, its state), written with the canonical tables' hints like a load; the accounts'
    `unmapped` state (driver.py: the records every load tries again) moves with the rows.

    The invoices to rewrite are read back a chunk at a time from where the comparison kept them
    (`Spill`), so memory stays bounded however many changed."""
    provider = api.provider

    def rows() -> Iterator[Any]:
        state = dlt.current.source_state()
        writer = TableWriter()
        for account in found:
            for row in account.write_clients:
                yield from writer.add_client(row)
            yield from _rewrite(account, writer)
            for row in account.write_unmapped:
                yield from writer.add_unmapped(row)
            known = unmapped_state(state.setdefault(account.account, {}))
            for record_type, first_seen in account.unmapped_now.items():
                known.setdefault(record_type, {}).update(first_seen)
            for record_type, gone in account.unmapped_gone.items():
                for key in gone:
                    known.get(record_type, {}).pop(key, None)
        yield from writer.flush()

    resource = dlt.resource(rows, name=f"{provider}_billing")
    return DltSource(dlt.Schema(provider), provider, [resource])


def _rewrite(account: AccountRemap, writer: TableWriter) -> Iterator[Any]:
    for invoices, items in account.rewrite.tables() if account.rewrite is not None else ():
        yield from writer.add_arrow(invoices, items)


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
        selection[provider.name] = None if labels is None else [stored_account(provider, lb) for lb in labels]
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
        with locked(target, name), tempfile.TemporaryDirectory(prefix="billing-remap-") as spill:
            return _remap_locked(target, name, providers, selection, explicit, Path(spill))
    except LockHeld as held:
        log.error("%s", held)
        return EXIT_LOCKED
    except Stopped as stopped:
        log.error(
            "stopped by signal %d: the remap did not complete; what it committed stays, run it again", stopped.signum
        )
        return 128 + stopped.signum
    except OSError as exc:
        log.error("%s", explain(exc, target) or cannot_lock(exc))
        return EXIT_FAILED


def _remap_locked(
    target: Where,
    name: str,
    providers: dict[str, Provider],
    selection: dict[str, list[str] | None],
    explicit: bool,
    spill: Path,
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
    working_dir = target.pipelines_dir / name
    if not ready_to_write(target, working_dir):
        return EXIT_FAILED
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
            apis: dict[str, Api] = {}
            for provider, accounts in chosen.items():
                api = declaration(providers[provider])
                if api is None:
                    log.warning("%s declares no mapping the driver runs: its rows are left as they are", provider)
                    continue
                for account in sorted(accounts):
                    inputs = StoredInputs(states.get(provider, {}).get(account, {}))
                    kept = spill / str(sum(len(a) for a in found.values()))
                    found.setdefault(provider, []).append(remap_account(api, account, warehouse, inputs, kept))
                apis[provider] = api
    except Stopped:
        raise
    except Exception as exc:
        if stop_signal(exc) is not None:
            raise Stopped(stop_signal(exc) or 2) from None
        log.error("%s", explain(exc, target) or cannot_open(exc))
        return EXIT_FAILED
    everything = [a for remapped in found.values() for a in remapped]
    for one in everything:
        for line in one.report():
            log.info("%s", line)
    code = _write(pipeline, target, apis, found)
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


def _write(pipeline: dlt.Pipeline, target: Where, apis: Mapping[str, Api], found: dict[str, list[AccountRemap]]) -> int:
    """Write what changed, provider by provider; refresh the views when anything was written."""
    wrote = False
    for provider, accounts in found.items():
        changed = [a for a in accounts if a.changed]
        if not changed:
            continue
        try:
            file_format = loader_file_format(pipeline.destination)
            remapped = remapped_source(pipeline, apis[provider], changed)
            loading(pipeline, lambda: pipeline.run(remapped, loader_file_format=file_format), provider)  # noqa: B023
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
