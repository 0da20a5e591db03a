"""`billing-elt remap [PROVIDER[:LABEL]]`: the canonical rows derived again from the payloads the
warehouse stores, with the current mapping and no API call (docs/configuration.md, command
table; docs/canonical-model.md, `raw` and `unmapped_records`).

Read what was stored, run the same mapping, write what changed. For every selected provider
account (every account the warehouse holds when none is named):

1. its stored payloads are read: the `raw` of its `clients` and `invoices` rows and of its
   `unmapped_records` (where a record is in both, the unmapped payload is the newer one: a load
   that cannot map a record keeps its old row and the new payload beside it), each with what its
   mapping read besides it (`_mapping_inputs`, `sources/shared/inputs.py`);
2. they are mapped by the driver's own `RecordWriter` into the load's own columns, a chunk of
   invoices at a time, the clients' names coming from the clients mapped now;
3. the rows are compared with the stored ones (an in-memory DuckDB join on the keys), and only
   the invoices (with all their lines) and clients that differ are written, through dlt with a
   load's hints and merge; a record that maps now leaves `unmapped_records`, one that no longer
   maps goes there and its canonical rows are removed. A record whose inputs were not kept is
   left as it is and reported (exit 1), never mapped with a guess.

`deleted_at` is what a listing saw, not what a payload says: it is kept. Nothing changed means
nothing written, and remap adds no history (it observed nothing at the provider). It takes the
run lock like a load and refreshes the views when it wrote something.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from dlt.extract.source import DltSource

from pipelines import config
from pipelines.failures import Stopped, Where, explain, stop_signal
from pipelines.history import correct_current
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
from pipelines.warehouse import hold_duckdb_file, loader_file_format
from sources.shared.declaration import Api, Context
from sources.shared.driver import RecordWriter, unmapped_state
from sources.shared.inputs import MissingInput, legacy_inputs, stored_context
from sources.shared.model import (
    CLIENTS,
    INPUTS,
    INVOICE_ITEMS,
    INVOICES,
    PRIMARY_KEYS,
    SCHEMAS,
    TOMBSTONE,
    UNMAPPED,
    TableWriter,
    column_names,
)
from sources.shared.provider import Provider
from sources.shared.records import Record
from sources.shared.redact import redact
from sources.shared.stats import RunStats

log = logging.getLogger("billing.run")

CHUNK = 5_000  # invoices read, mapped and compared at a time
DELETE_CHUNK = 500  # keys per IN (...) list
KEPT = "deleted_at"
CANONICAL = (INVOICES, INVOICE_ITEMS, CLIENTS)  # set from what a listing saw, not from the payload: a remap keeps it


@dataclass
class AccountRemap:
    """What the remap of one provider account found, and what it writes."""

    provider: str
    account: str
    records: Counter[str] = field(default_factory=Counter)  # record type → payloads mapped again
    tables: dict[str, Changes] = field(
        default_factory=lambda: {t: Changes() for t in (INVOICES, INVOICE_ITEMS, CLIENTS)}
    )
    resolved: int = 0
    new_unmapped: int = 0
    missing: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # what input → record type → keys
    delete: dict[str, list[str]] = field(default_factory=lambda: {INVOICES: [], CLIENTS: []})
    unmapped_rows: list[dict[str, Any]] = field(default_factory=list)
    unmapped_now: dict[str, dict[str, str]] = field(default_factory=dict)  # record type → key → first seen
    unmapped_gone: list[tuple[str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.provider} [{self.account}]"

    @property
    def wrote(self) -> bool:
        return bool(any(self.tables.values()) or self.unmapped_rows)

    def report(self) -> list[str]:
        done = ", ".join(f"{n:,} {t}{'s' if n != 1 else ''}" for t, n in sorted(self.records.items())) or "nothing"
        if not self.wrote:
            return [f"{self.name}: {done} mapped again from stored payloads; nothing changed"]
        lines = [f"{self.name}: {done} mapped again from stored payloads"]
        for table, changes in self.tables.items():
            lines.append(f"  {table:<17} {changes.line()}")
        lines.append(f"  {UNMAPPED:<17} {self.resolved:,} resolved · {self.new_unmapped:,} new")
        return lines

    def missing_paragraph(self) -> str | None:
        if not self.missing:
            return None
        parts = [
            f"{len(keys):,} {record_type}(s) ({', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''}) need {what}"
            for what, by_type in self.missing.items()
            for record_type, keys in by_type.items()
        ]
        label = f"{self.provider}:{self.account}"
        return (
            f"{self.name}: not remapped, their rows left as they are: {'; '.join(parts)}, which the load that "
            f"wrote them did not keep. A load keeps it for every record it writes: `billing-elt reset {label}` "
            "followed by a load rewrites every record of the account."
        )


class Stored:
    """What the warehouse stores of one account, read through dlt's SQL client (any destination),
    DuckDB's own Arrow reader where the warehouse is DuckDB."""

    def __init__(self, client: Any, provider: str, account: str) -> None:
        self.client, self.provider, self.account = client, provider, account
        self.columns = {t: table_columns(client, t) for t in (INVOICES, INVOICE_ITEMS, CLIENTS, UNMAPPED)}

    def rows(self, table: str, where: str = "", *params: Any) -> pa.Table:
        """The account's rows of `table` (canonical columns it has; JSON as its text) as Arrow."""
        present = self.columns[table]
        names = [c for c in column_names(table) if c != TOMBSTONE and (c in present or not present)]
        schema = pa.schema([SCHEMAS[table].field(c) for c in names])
        if not present:
            return schema.empty_table()
        select = ", ".join(f"CAST({c} AS TEXT) AS {c}" if c in ("raw", INPUTS) else c for c in names if c in present)
        sql = (
            f"SELECT {select} FROM {self.client.make_qualified_table_name(table)} WHERE provider = %s AND account = %s"
        )
        native = getattr(self.client, "native_connection", None)
        if isinstance(native, duckdb.DuckDBPyConnection):
            found = native.sql(f"{sql} {where}".replace("%s", "?"), params=[self.provider, self.account, *params])
            data = found.to_arrow_table()
        else:
            result = self.client.execute_sql(f"{sql} {where}", self.provider, self.account, *params) or []
            data = pa.Table.from_pylist([dict(zip([c for c in names if c in present], r, strict=True)) for r in result])
        return pa.Table.from_arrays(
            [
                data.column(c).cast(f.type) if c in data.column_names else pa.nulls(len(data), f.type)
                for c, f in zip(names, schema, strict=True)
            ],
            schema=schema,
        )

    def invoice_chunks(self) -> Iterator[tuple[pa.Table, pa.Table]]:
        """The account's invoices and their lines, `CHUNK` invoices at a time in id order."""
        after: str | None = None
        while True:
            where = ("AND invoice_id > %s " if after is not None else "") + f"ORDER BY invoice_id LIMIT {CHUNK}"
            invoices = self.rows(INVOICES, where, *([after] if after is not None else []))
            if not invoices.num_rows:
                return
            ids = invoices.column("invoice_id")
            first, after = ids[0].as_py(), ids[-1].as_py()
            yield invoices, self.rows(INVOICE_ITEMS, "AND invoice_id >= %s AND invoice_id <= %s", first, after)


class Collector(TableWriter):
    """A `TableWriter` whose rows are taken back (`take`) instead of handed to dlt."""

    def take(self, table: str) -> pa.Table:
        tables, self._tables[table], self._buffered[table] = self._tables[table], [], 0
        return pa.concat_tables(tables) if tables else SCHEMAS[table].empty_table()


Payload = tuple[Record, str | None, str]  # the record, its stored inputs, its key


class AccountMapper:
    """Maps one account's stored payloads with the provider's mapping (the driver's `RecordWriter`,
    so exactly as a load maps them) and finds what differs from the stored rows."""

    def __init__(self, api: Api, stored: Stored, state: dict[str, Any]) -> None:
        self.api, self.stored, self.state = api, stored, state
        self.found = AccountRemap(api.provider, stored.account)
        unmapped = stored.rows(UNMAPPED).to_pylist()
        self.unmapped: dict[tuple[str, str], dict[str, Any]] = {
            (r["record_type"], r["record_key"]): r for r in unmapped
        }
        self.was_unmapped = dict(self.unmapped)
        self.writer = Collector()
        watched = {key for _, key in self.unmapped}
        self.records = RecordWriter(api, self.writer, RunStats(api.provider, stored.account), watched)
        self.names: dict[str, str | None] = {}
        self.base = Context(api.provider, stored.account, client_names=self.names)
        self.out: list[tuple[str, pa.Table]] = []
        self.had_rows: dict[str, set[str]] = {"client": set(), "invoice": set()}
        self.lines_of: dict[str, int] = {}

    def run(self) -> AccountRemap:
        clients = self.stored.rows(CLIENTS)
        self._map(clients, "client_id", "client", unmapped_only=True)
        self._compare(CLIENTS, clients)
        for invoices, lines in self.stored.invoice_chunks():
            self._map(invoices, "invoice_id", "invoice")
            self._compare(INVOICES, invoices, lines)
        self._map(SCHEMAS[INVOICES].empty_table(), "invoice_id", "invoice", unmapped_only=True)
        self._compare(INVOICES, SCHEMAS[INVOICES].empty_table(), SCHEMAS[INVOICE_ITEMS].empty_table())
        self._settle_unmapped()
        return self.found

    def _payloads(self, rows: pa.Table, key: str, record_type: str, unmapped_only: bool) -> list[Payload]:
        """The stored rows' payloads (the newer unmapped payload where there is one), and with
        `unmapped_only` the payloads of that type stored only as unmapped records."""
        found: list[Payload] = []
        for row in rows.select([key, "raw", INPUTS]).to_pylist():
            self.had_rows[record_type].add(row[key])
            newer = self.unmapped.pop((record_type, row[key]), None)
            source = newer or row
            found.append((Record(source["raw"]), source[INPUTS], row[key]))
        if unmapped_only:
            for (kind, name), row in list(self.unmapped.items()):
                if kind == record_type:
                    del self.unmapped[(kind, name)]
                    found.append((Record(row["raw"]), row[INPUTS], name))
        return found

    def _map(self, rows: pa.Table, key: str, record_type: str, unmapped_only: bool = False) -> None:
        listing = self.api.clients if record_type == "client" else self.api.invoices
        mapped: list[tuple[Record, dict[str, Any]]] = []
        for record, inputs, name in self._payloads(rows, key, record_type, unmapped_only):
            inputs = inputs or legacy_inputs(self.state, record_type, name)
            self.records.recorder.stored = inputs
            try:
                context = stored_context(self.base, inputs, listing.restore_context, listing.page_context is not None)
                if record_type == "client":
                    mapped.extend(self.records.map_clients([record], context))
                else:
                    for _ in self.records.write([record], context):
                        pass
            except MissingInput as missing:
                self.found.missing.setdefault(missing.what, {}).setdefault(record_type, []).append(name)
                self.had_rows[record_type].discard(name)  # left as it is, whatever it maps to
                continue
            self.found.records[record_type] += 1
        for _, row in mapped:
            self.names[row["client_id"]] = row["name"]
        self.records.write_clients(mapped)

    def _compare(self, table: str, old: pa.Table, old_lines: pa.Table | None = None) -> None:
        """Keep for writing the rows that differ from the stored ones (`deleted_at` kept as stored)."""
        new = _kept(self.writer.take(table), old, table)
        new_lines = self.writer.take(INVOICE_ITEMS) if table == INVOICES else None
        if old_lines is not None and old_lines.num_rows:
            # The lines of stored invoices that map no more: removed with them if they are unmapped now.
            gone = pc.invert(pc.is_in(old_lines.column("invoice_id"), value_set=new.column("invoice_id")))
            for invoice_id, count in Counter(old_lines.filter(gone).column("invoice_id").to_pylist()).items():
                self.lines_of[invoice_id] = count
        key = PRIMARY_KEYS[table][-1]
        changed, rows, lines = _differences(table, new, old, new_lines, old_lines)
        self.found.tables[table].add(rows)
        self.found.tables[INVOICE_ITEMS].add(lines)
        if not changed:
            return
        wanted = pa.array(sorted(changed), pa.string())
        self.out.append((table, new.filter(pc.is_in(new.column(key), value_set=wanted))))
        if new_lines is not None:
            self.out.append(
                (INVOICE_ITEMS, new_lines.filter(pc.is_in(new_lines.column("invoice_id"), value_set=wanted)))
            )

    def _settle_unmapped(self) -> None:
        """Records that map now leave `unmapped_records`; those that no longer map enter it (their
        canonical rows removed); those still unmapped keep their first sighting."""
        found, now = self.found, dt.datetime.now(dt.UTC)
        known = unmapped_state(self.state)
        keys = {"provider": found.provider, "account": found.account}
        for record_type, failed in self.records.failed.items():
            for key, (reason, record, inputs) in failed.items():
                first = known.get(record_type, {}).get(key)
                before = self.was_unmapped.get((record_type, key))
                if before is None:
                    found.new_unmapped += 1
                elif (before["reason"], before["raw"], before[INPUTS]) == (reason, record.text, inputs):
                    continue  # unmapped as it was
                found.unmapped_rows.append(
                    {
                        **keys,
                        "record_type": record_type,
                        "record_key": key,
                        "reason": reason,
                        "first_seen_at": dt.datetime.fromisoformat(first) if first else now,
                        "last_seen_at": now,
                        "raw": record.text,
                        INPUTS: inputs,
                    }
                )
                found.unmapped_now.setdefault(record_type, {})[key] = first or now.isoformat()
                if key in self.had_rows[record_type]:
                    table = CLIENTS if record_type == "client" else INVOICES
                    found.delete[table].append(key)
                    found.tables[table].removed += 1
                    if table == INVOICES:
                        found.tables[INVOICE_ITEMS].removed += self.lines_of.get(key, 0)
        for record_type, key in sorted(self.was_unmapped):
            if key in self.records.resolved and key not in self.records.failed[record_type]:
                found.unmapped_gone.append((record_type, key))
                found.unmapped_rows.append({**keys, "record_type": record_type, "record_key": key, TOMBSTONE: True})
                found.resolved += 1


def _kept(new: pa.Table, old: pa.Table, table: str) -> pa.Table:
    """`new` with the stored `deleted_at` of each row (a listing's finding, not the payload's)."""
    if table not in (INVOICES, CLIENTS) or not new.num_rows:
        return new
    key = PRIMARY_KEYS[table][-1]
    kept = dict(zip(old.column(key).to_pylist(), old.column(KEPT).to_pylist(), strict=True))
    values = pa.array([kept.get(k) for k in new.column(key).to_pylist()], SCHEMAS[table].field(KEPT).type)
    return new.set_column(new.schema.get_field_index(KEPT), KEPT, values)


@dataclass
class Changes:
    """Rows of one table: changed (same key, other values), added and removed."""

    changed: int = 0
    added: int = 0
    removed: int = 0

    def __bool__(self) -> bool:
        return bool(self.changed or self.added or self.removed)

    def add(self, other: Changes) -> None:
        self.changed, self.added, self.removed = (
            self.changed + other.changed,
            self.added + other.added,
            self.removed + other.removed,
        )

    def line(self) -> str:
        return f"{self.changed:,} changed · {self.added:,} added · {self.removed:,} removed"


def _differences(
    table: str, new: pa.Table, old: pa.Table, new_lines: pa.Table | None, old_lines: pa.Table | None
) -> tuple[set[str], Changes, Changes]:
    """The keys of `new` rows that are not stored as they are (for invoices, lines included),
    compared column by column in an in-memory DuckDB (`IS DISTINCT FROM`, the session in UTC),
    and how many rows of the table, and of the lines, changed, were added or removed."""
    rows, lines = Changes(), Changes()
    if not new.num_rows:
        return set(), rows, lines
    keys = PRIMARY_KEYS[table]
    found: set[str] = set()
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("n", new)
        con.register("o", old)
        differs = " OR ".join(f"n.{c} IS DISTINCT FROM o.{c}" for c in old.column_names if c not in keys)
        on = " AND ".join(f"n.{k} = o.{k}" for k in keys)
        query = f"SELECT n.{keys[-1]}, o.{keys[-1]} IS NULL FROM n LEFT JOIN o ON {on} WHERE o.{keys[-1]} IS NULL"
        for key, added in con.execute(f"{query} OR {differs}").fetchall():
            found.add(key)
            rows.added += added
            rows.changed += not added
        if new_lines is not None and old_lines is not None:
            live = pc.invert(pc.fill_null(new_lines.column(TOMBSTONE), False))
            con.register("nl", new_lines.filter(live))
            con.register("ol", old_lines)
            line_keys = PRIMARY_KEYS[INVOICE_ITEMS]
            differs = " OR ".join(
                f"nl.{c} IS DISTINCT FROM ol.{c}" for c in old_lines.column_names if c not in line_keys
            )
            on = " AND ".join(f"nl.{k} = ol.{k}" for k in line_keys)
            query = (
                "SELECT COALESCE(nl.invoice_id, ol.invoice_id), ol.invoice_id IS NULL, nl.invoice_id IS NULL FROM nl "
                f"FULL JOIN (SELECT * FROM ol WHERE invoice_id IN (SELECT invoice_id FROM n)) ol ON {on} "
                f"WHERE nl.invoice_id IS NULL OR ol.invoice_id IS NULL OR {differs}"
            )
            for key, added, removed in con.execute(query).fetchall():
                found.add(key)
                lines.added += added
                lines.removed += removed
                lines.changed += not (added or removed)
    return found, rows, lines


# --- writing ----------------------------------------------------------------------------------


def remapped_source(provider: str, found: Sequence[tuple[AccountRemap, list[tuple[str, pa.Table]]]]) -> DltSource:
    """The changed rows of one provider's accounts as a dlt source of the provider's name (its
    schema, its state), written with the canonical tables' hints like a load; the accounts'
    `unmapped` state (the records every load tries again) moves with the rows."""

    def rows() -> Iterator[Any]:
        state = dlt.current.source_state()
        writer = TableWriter()
        for account, tables in found:
            for table, data in tables:
                if data.num_rows:
                    yield from writer.emit_arrow(table, data)
            for row in account.unmapped_rows:
                writer.add_unmapped(row)
            known = unmapped_state(state.setdefault(account.account, {}))
            for record_type, first_seen in account.unmapped_now.items():
                known.setdefault(record_type, {}).update(first_seen)
            for record_type, key in account.unmapped_gone:
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
                ((INVOICE_ITEMS, INVOICES), "invoice_id", account.delete[INVOICES]),
                ((CLIENTS,), "client_id", account.delete[CLIENTS]),
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
        log.error("%s", explain(exc, target) or cannot_lock(exc))
        return EXIT_FAILED


Found = dict[str, list[tuple[AccountRemap, list[tuple[str, pa.Table]]]]]


def _remap_locked(
    target: Where, name: str, providers: dict[str, Provider], selection: dict[str, list[str] | None], explicit: bool
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
    with ExitStack() as holding:
        return _remap_held(target, name, providers, selection, explicit, holding, run_id)


def _remap_held(
    target: Where,
    name: str,
    providers: dict[str, Provider],
    selection: dict[str, list[str] | None],
    explicit: bool,
    holding: ExitStack,
    run_id: str,
) -> int:
    working_dir = target.pipelines_dir / name
    found: Found = {}
    try:
        pipeline = make_pipeline(name, holding.enter_context(hold_duckdb_file(target.database)))
        check_warehouse(pipeline)
        # An interrupted run's rows land first: remap reads what the warehouse holds.
        if not finish_interrupted_load(pipeline, target):
            return EXIT_FAILED
        pipeline.sync_destination()
        with pipeline.sql_client() as client:
            if not client.has_dataset():
                log.info("nothing to remap: %s holds no %s dataset yet", describe_target(target), pipeline.dataset_name)
                return EXIT_OK
            chosen = _accounts(_stored_accounts(client), providers, selection, explicit)
            if isinstance(chosen, int):
                return chosen
            states = pipeline.state.get("sources", {})
            for provider, accounts in chosen.items():
                for account in sorted(accounts):
                    state = states.get(provider, {}).get(account, {})
                    mapper = AccountMapper(providers[provider].api, Stored(client, provider, account), state)
                    found.setdefault(provider, []).append((mapper.run(), mapper.out))
    except Stopped:
        raise
    except Exception as exc:
        if stop_signal(exc) is not None:
            raise Stopped(stop_signal(exc) or 2) from None
        log.error("%s", explain(exc, target) or cannot_open(exc))
        return EXIT_FAILED
    everything = [a for remapped in found.values() for a, _ in remapped]
    for one in everything:
        for line in one.report():
            log.info("%s", line)
    code = _write(pipeline, target, found)
    incomplete = [p for a in everything if (p := a.missing_paragraph())]
    for paragraph in incomplete:
        log.error("%s", paragraph)
    if not any(a.wrote for a in everything):
        log.info("remap %s: nothing changed, nothing written", run_id)
    delete_loaded_packages(working_dir)
    return code if code != EXIT_OK else (EXIT_FAILED if incomplete else EXIT_OK)


def _stored_accounts(client: Any) -> dict[str, set[str]]:
    """provider → the accounts any canonical table holds rows of."""
    found: dict[str, set[str]] = {}
    for table in (INVOICES, INVOICE_ITEMS, CLIENTS, UNMAPPED):
        if table_columns(client, table):
            rows = client.execute_sql(
                f"SELECT DISTINCT provider, account FROM {client.make_qualified_table_name(table)}"
            )
            for provider, account in rows or []:
                found.setdefault(str(provider), set()).add(str(account))
    return found


def _accounts(
    stored: dict[str, set[str]],
    providers: dict[str, Provider],
    selection: dict[str, list[str] | None],
    explicit: bool,
) -> dict[str, set[str]] | int:
    """The stored accounts to remap, or an exit code when a named one holds nothing."""
    chosen: dict[str, set[str]] = {}
    held = ", ".join(f"{p} [{a}]" for p in sorted(stored) if p in providers for a in sorted(stored[p]))
    for provider, accounts in selection.items():
        present = stored.get(provider, set())
        absent = [a for a in accounts or [] if a not in present]
        if (accounts is None and not present and explicit) or absent:
            what = ", ".join(f"{provider} [{a}]" for a in absent) or provider
            log.error("nothing stored for %s: the warehouse holds %s", what, held or "no rows yet")
            return EXIT_USAGE
        if accounts is None and present:
            chosen[provider] = set(present)
        elif accounts:
            chosen.setdefault(provider, set()).update(accounts)
    for provider in sorted(set(stored) - set(providers)):
        log.warning("rows of %s: no such provider is installed here; they are left as they are", provider)
    if not chosen:
        log.info("nothing to remap: the warehouse holds no provider's rows yet")
    return chosen


def _write(pipeline: dlt.Pipeline, target: Where, found: Found) -> int:
    """Write what changed, provider by provider; refresh the views when anything was written."""
    wrote = False
    for provider, accounts in found.items():
        changed = [(a, tables) for a, tables in accounts if a.wrote]
        if not changed:
            continue
        try:
            file_format = loader_file_format(pipeline.destination)
            remapped = remapped_source(provider, changed)
            loading(pipeline, lambda: pipeline.run(remapped, loader_file_format=file_format), provider)  # noqa: B023
            if any(a.delete[INVOICES] or a.delete[CLIENTS] for a, _ in changed):
                with pipeline.sql_client() as client:
                    delete_removed(client, [a for a, _ in changed])
            with pipeline.sql_client() as client:  # the current history rows take the remapped values
                correct_current(client, provider, [a.account for a, _ in changed])
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
