"""The canonical tables (`invoices`, `invoice_items`, `clients`) and how rows reach dlt.

The contract is `docs/canonical-model.md`: column names, types and keys here follow it exactly.
Rows are collected per table and handed to dlt as Arrow tables in batches, so dlt writes
parquet and DuckDB reads it in bulk: dlt's default path (one INSERT per row) is about ten
times slower on the same invoices.

How re-loads stay exact:
- `invoices` and `clients` merge on their keys (delete-insert): a second identical run
  rewrites the same values and leaves the tables identical.
- `invoice_items` merges with `merge_key = (provider, account, invoice_id)`: every line of a
  re-loaded invoice is deleted before its current lines are inserted, so a line removed
  upstream disappears. An invoice that lost all of its lines sends one tombstone row
  (`_tombstone = true`, `line_number = 0`): it triggers the delete and is itself never stored.
- `deleted_at` (invoices, clients) is NULL in every row a mapping writes: a record written again
  is listed, so it is not deleted (docs/canonical-model.md, "Deletions"). Rows a complete listing
  no longer holds are marked after the load (`pipelines/deletions.py`); their lines stay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.extract.hints import make_hints

from sources.shared.stats import RunStats
from sources.shared.values import MONEY_PRECISION, MONEY_SCALE, fit_money

INVOICES = "invoices"
INVOICE_ITEMS = "invoice_items"
CLIENTS = "clients"
UNMAPPED = "unmapped_records"

CANONICAL_STATUSES = ("draft", "open", "partially_paid", "paid", "void", "uncollectible")
TOMBSTONE = "_tombstone"

_TEXT, _BOOL, _INT = pa.string(), pa.bool_(), pa.int64()
_DEC = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)
_DATE = pa.date32()
_TS = pa.timestamp("us", tz="UTC")
_JSON = pa.string()  # JSON text; the `json` column hint makes it a JSON column in the warehouse

# (name, arrow type, dlt data type) in contract order. Key columns are non-nullable.
_COLUMNS: dict[str, list[tuple[str, pa.DataType, str]]] = {
    INVOICES: [
        ("provider", _TEXT, "text"),
        ("account", _TEXT, "text"),
        ("invoice_id", _TEXT, "text"),
        ("client_id", _TEXT, "text"),
        ("client_name", _TEXT, "text"),
        ("number", _TEXT, "text"),
        ("document_type", _TEXT, "text"),
        ("status", _TEXT, "text"),
        ("provider_status", _TEXT, "text"),
        ("is_archived", _BOOL, "bool"),
        ("issue_date", _DATE, "date"),
        ("due_date", _DATE, "date"),
        ("currency", _TEXT, "text"),
        ("subtotal", _DEC, "decimal"),
        ("discount_total", _DEC, "decimal"),
        ("tax_total", _DEC, "decimal"),
        ("withholding_total", _DEC, "decimal"),
        ("shipping_total", _DEC, "decimal"),
        ("total", _DEC, "decimal"),
        ("balance_due", _DEC, "decimal"),
        ("created_at", _TS, "timestamp"),
        ("updated_at", _TS, "timestamp"),
        ("paid_at", _TS, "timestamp"),
        ("voided_at", _TS, "timestamp"),
        ("reference", _TEXT, "text"),
        ("notes", _TEXT, "text"),
        ("deleted_at", _TS, "timestamp"),
        ("raw", _JSON, "json"),
    ],
    INVOICE_ITEMS: [
        ("provider", _TEXT, "text"),
        ("account", _TEXT, "text"),
        ("invoice_id", _TEXT, "text"),
        ("line_number", _INT, "bigint"),
        ("item_id", _TEXT, "text"),
        ("name", _TEXT, "text"),
        ("description", _TEXT, "text"),
        ("quantity", _DEC, "decimal"),
        ("unit", _TEXT, "text"),
        ("unit_price", _DEC, "decimal"),
        ("discount_amount", _DEC, "decimal"),
        ("tax_rate", _DEC, "decimal"),
        ("tax_amount", _DEC, "decimal"),
        ("subtotal", _DEC, "decimal"),
        ("total", _DEC, "decimal"),
        ("raw", _JSON, "json"),
        (TOMBSTONE, _BOOL, "bool"),
    ],
    CLIENTS: [
        ("provider", _TEXT, "text"),
        ("account", _TEXT, "text"),
        ("client_id", _TEXT, "text"),
        ("name", _TEXT, "text"),
        ("email", _TEXT, "text"),
        ("country", _TEXT, "text"),
        ("tax_id", _TEXT, "text"),
        ("created_at", _TS, "timestamp"),
        ("updated_at", _TS, "timestamp"),
        ("deleted_at", _TS, "timestamp"),
        ("raw", _JSON, "json"),
    ],
    # docs/canonical-model.md, `unmapped_records`: what could not be mapped, kept raw and retried.
    UNMAPPED: [
        ("provider", _TEXT, "text"),
        ("account", _TEXT, "text"),
        ("record_type", _TEXT, "text"),
        ("record_key", _TEXT, "text"),
        ("reason", _TEXT, "text"),
        ("first_seen_at", _TS, "timestamp"),
        ("last_seen_at", _TS, "timestamp"),
        ("raw", _JSON, "json"),
        (TOMBSTONE, _BOOL, "bool"),
    ],
}

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    INVOICES: ("provider", "account", "invoice_id"),
    INVOICE_ITEMS: ("provider", "account", "invoice_id", "line_number"),
    CLIENTS: ("provider", "account", "client_id"),
    UNMAPPED: ("provider", "account", "record_type", "record_key"),
}
MERGE_KEYS: dict[str, tuple[str, ...]] = {INVOICE_ITEMS: ("provider", "account", "invoice_id")}


_MONEY_COLUMNS = {t: tuple(n for n, a, _ in cols if a == _DEC) for t, cols in _COLUMNS.items()}
_TEXT_COLUMNS = {t: tuple(n for n, a, _ in cols if a == _TEXT and n != "raw") for t, cols in _COLUMNS.items()}
# What `unfit` checks: (table, its money columns, its text columns), for invoices then lines.
_CHECKED_COLUMNS = tuple((t, _MONEY_COLUMNS[t], _TEXT_COLUMNS[t]) for t in (INVOICES, INVOICE_ITEMS))


def unfit(mapped: MappedInvoice) -> str | None:
    """What in a mapped invoice its columns cannot hold exactly, or None: an amount (read, or
    derived by the mapping: a sum, a product) past DECIMAL(18, 6), or text that is not text.
    Such an invoice is reported and kept unmapped like any other (sources/shared/driver.py);
    written, it would fail the whole batch's Arrow conversion instead. The amounts that fit are
    set to the column's scale in place (the same values)."""
    (invoices, invoice_money, invoice_text), (items, item_money, item_text) = _CHECKED_COLUMNS
    for table, money, texts, rows in (
        (invoices, invoice_money, invoice_text, (mapped.invoice,)),
        (items, item_money, item_text, mapped.items),
    ):
        for row in rows:
            get = row.get
            for name in money:
                value = get(name)
                if type(value) is Decimal:  # nearly every amount: tested first
                    scaled = fit_money(value)
                elif value is None:
                    continue
                elif type(value) is int:
                    scaled = fit_money(Decimal(value))
                else:
                    return f"{table}.{name}: {value!r} is not an exact amount"
                if scaled is None:
                    return f"{table}.{name}: {value} does not fit DECIMAL({MONEY_PRECISION}, {MONEY_SCALE}) exactly"
                # The same amount at the column's scale: Arrow refuses `1.000…0` written with more
                # digits than it holds, and reads `1E-600000` as 0 instead of refusing it.
                row[name] = scaled
            for name in texts:
                value = get(name)
                if value is not None and type(value) is not str:
                    return f"{table}.{name}: expected text, got {type(value).__name__} {value!r}"
    return None


def column_names(table: str) -> list[str]:
    """The canonical columns of `table`, in contract order."""
    return [name for name, _, _ in _COLUMNS[table]]


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema rows of `table` are built with."""
    keys = set(PRIMARY_KEYS[table])
    return pa.schema([pa.field(name, arrow_type, nullable=name not in keys) for name, arrow_type, _ in _COLUMNS[table]])


def dlt_columns(table: str) -> dict[str, dict[str, Any]]:
    """dlt column hints matching `arrow_schema`, so dlt infers nothing and warns about nothing."""
    keys = set(PRIMARY_KEYS[table])
    columns: dict[str, dict[str, Any]] = {}
    for name, _, data_type in _COLUMNS[table]:
        column: dict[str, Any] = {"data_type": data_type, "nullable": name not in keys}
        if data_type == "decimal":
            column.update(precision=MONEY_PRECISION, scale=MONEY_SCALE)
        if data_type == "timestamp":
            column.update(timezone=True, precision=6)
        if name == TOMBSTONE:
            column["hard_delete"] = True
        columns[name] = column
    return columns


def table_hints(table: str, append: bool = False) -> Any:
    """dlt hints for one canonical table: columns, keys and delete-insert merge; with `append`,
    the same columns and keys appended (a first load into an account that holds no rows yet)."""
    # Typed loosely: with pydantic installed, dlt's `columns` type no longer takes a plain dict.
    columns: Any = dlt_columns(table)
    if append and TOMBSTONE in columns:
        # An appending extract carries no tombstone (`TableWriter`): the hint applies to merges only.
        columns[TOMBSTONE] = {k: v for k, v in columns[TOMBSTONE].items() if k != "hard_delete"}
    disposition: Any = "append" if append else {"disposition": "merge", "strategy": "delete-insert"}
    return make_hints(
        table_name=table,
        write_disposition=disposition,
        columns=columns,
        primary_key=list(PRIMARY_KEYS[table]),
        merge_key=list(MERGE_KEYS[table]) if table in MERGE_KEYS else None,
    )


SCHEMAS = {table: arrow_schema(table) for table in _COLUMNS}


class _RawJsonHintNotice(logging.Filter):
    """dlt warns whenever an Arrow column's type differs from its declared hint. The one
    difference in our tables is deliberate: Arrow has no JSON type dlt accepts, so `raw` travels
    as text and the `json` hint makes it a JSON column. Every other hint matches the Arrow schema
    exactly (a test checks this at INFO level), so this warning carries no news for a user."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "several column hints were different" not in record.getMessage()


logging.getLogger("dlt").addFilter(_RawJsonHintNotice())


TOTAL_TOLERANCE = Decimal("0.01")


def total_mismatch(invoice: Mapping[str, Any]) -> bool:
    """Whether an invoice row breaks the contract's rule
    `total = subtotal + tax_total + shipping_total − withholding_total` by more than 0.01.

    Such a row keeps the provider's `total`; the caller counts the mismatch for the run summary.
    A row missing one of the figures cannot be checked and is not counted.
    """
    parts: list[Decimal] = [
        invoice[k]
        for k in ("subtotal", "tax_total", "shipping_total", "withholding_total", "total")
        if invoice.get(k) is not None
    ]
    if len(parts) < 5:
        return False
    subtotal, tax, shipping, withholding, total = parts
    return abs(subtotal + tax + shipping - withholding - total) > TOTAL_TOLERANCE


# Text columns that may hold NULL: every text column except the keys (which are never NULL).
_NULLABLE_TEXT: dict[str, tuple[str, ...]] = {
    table: tuple(name for name, _, data_type in columns if data_type == "text" and name not in PRIMARY_KEYS[table])
    for table, columns in _COLUMNS.items()
}


def apply_contract_rules(table: str, row: Mapping[str, Any]) -> Mapping[str, Any]:
    """The contract's rules that hold for every provider, applied once to each canonical row
    before it is converted to Arrow (`docs/canonical-model.md`):

    - text columns hold NULL, never an empty string: a provider's `""` is stored as NULL
      (key columns and `raw`, the untouched payload, are left as they are);
    - an invoice's `balance_due` is NULL for drafts and 0 for void documents.

    Returns `row` itself when nothing changes, else a changed copy.
    """
    fixes: dict[str, Any] = {name: None for name in _NULLABLE_TEXT[table] if row.get(name) == ""}
    if table == INVOICES:
        status, balance = row.get("status"), row.get("balance_due")
        if status == "draft" and balance is not None:
            fixes["balance_due"] = None
        elif status == "void" and (balance is None or balance != 0):
            fixes["balance_due"] = Decimal(0)
    return {**row, **fixes} if fixes else row


def arrow_table(table: str, columns: Mapping[str, Any], rows: int) -> pa.Table:
    """An Arrow table of `table`'s schema from `columns` (name → values or Arrow array); a
    column not given is all NULL. Raises `pa.ArrowInvalid` (or `pa.ArrowTypeError`) for a value
    that does not fit its column exactly (a number past DECIMAL(18, 6), say): never rounded."""
    schema = SCHEMAS[table]
    arrays = []
    for column in schema:
        values = columns.get(column.name)
        if values is None:
            arrays.append(pa.nulls(rows, column.type))
        elif isinstance(values, (pa.Array, pa.ChunkedArray)):
            arrays.append(values if values.type == column.type else values.cast(column.type))
        else:
            arrays.append(pa.array(values, type=column.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def rows_table(table: str, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Canonical rows of `table` as an Arrow table of its schema, the contract's rules applied."""
    return pa.Table.from_pylist([apply_contract_rules(table, row) for row in rows], schema=SCHEMAS[table])


def apply_contract_rules_arrow(table: str, data: pa.Table) -> pa.Table:
    """`apply_contract_rules` over a whole Arrow table at once, with the same result row by row."""
    columns = {name: data.column(name) for name in data.column_names}
    for name in _NULLABLE_TEXT[table]:
        column = columns[name]
        empty = pc.equal(column, "")
        if pc.any(empty).as_py():
            columns[name] = pc.if_else(empty, pa.scalar(None, column.type), column)
    if table == INVOICES:
        status, balance = columns["status"], columns["balance_due"]
        draft = pc.fill_null(pc.equal(status, "draft"), False)
        void = pc.fill_null(pc.equal(status, "void"), False)
        balance = pc.if_else(draft, pa.scalar(None, balance.type), balance)
        columns["balance_due"] = pc.if_else(void, pa.scalar(Decimal(0), balance.type), balance)
    return pa.Table.from_arrays([columns[n] for n in data.column_names], schema=data.schema)


def total_mismatches(invoices: pa.Table) -> int:
    """How many rows of an Arrow `invoices` table break the total rule (`total_mismatch`)."""
    parts = [invoices.column(k) for k in ("subtotal", "tax_total", "shipping_total", "withholding_total", "total")]
    subtotal, tax, shipping, withholding, total = parts
    difference = pc.subtract(pc.subtract(pc.add(pc.add(subtotal, tax), shipping), withholding), total)
    broken = pc.greater(pc.abs(difference), pa.scalar(TOTAL_TOLERANCE, difference.type))
    return int(pc.sum(pc.fill_null(broken, False).cast(pa.int64())).as_py() or 0)


def to_mapped(invoices: pa.Table, items: pa.Table) -> list[MappedInvoice]:
    """Arrow invoice and line rows back to `MappedInvoice`s, in the invoices' order (each line
    follows its invoice by `invoice_id`)."""
    lines: dict[Any, list[dict[str, Any]]] = {}
    for item in items.to_pylist():
        item.pop(TOMBSTONE, None)
        lines.setdefault(item["invoice_id"], []).append(item)
    mapped = []
    for row in invoices.to_pylist():
        row.pop("deleted_at", None)
        mapped.append(MappedInvoice(row, lines.pop(row["invoice_id"], [])))
    return mapped


@dataclass
class MappedInvoice:
    """One canonical invoice row and its line rows, as a mapping produces them."""

    invoice: dict[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)


class TableWriter:
    """Collects canonical rows and yields them to dlt as Arrow tables, batch by batch.

    The first table yielded for each canonical table carries its hints (a dlt table variant);
    later ones only name the table. Use inside a `@dlt.resource` generator:

        writer = TableWriter()
        for mapped in invoices:
            yield from writer.add_invoice(mapped)
        yield from writer.flush()

    **First loads append.** With `first_load` set, the writer asks it once per dlt extract,
    before the extract's first row, whether the destination holds no row of the account yet;
    if so, that extract's tables are appended instead of merged (no staging copy, no delete):
    tombstones are dropped (they would delete nothing) and a key met twice in the extract keeps
    its first rows only, so the tables hold what a merge would. The question is asked of the
    destination itself, after every earlier package was loaded, so a first run that committed
    a batch and was killed is merged into by the next run, never appended to twice.

    Args:
        batch_rows: rows per table buffered before an Arrow table is built.
        first_load: whether the destination holds no row of the account (None: always merge).
    """

    def __init__(self, batch_rows: int = 20_000, first_load: Callable[[], bool] | None = None) -> None:
        self.batch_rows = batch_rows
        self.first_load = first_load
        self._rows: dict[str, list[Mapping[str, Any]]] = {table: [] for table in _COLUMNS}
        self._announced: set[str] = set()
        self._append: bool | None = None  # decided at the first row of each extract
        self._keys: dict[str, set[tuple[Any, ...]]] = {table: set() for table in _COLUMNS}
        self._tables: dict[str, list[pa.Table]] = {table: [] for table in _COLUMNS}  # Arrow rows buffered
        self._buffered: dict[str, int] = dict.fromkeys(_COLUMNS, 0)

    @property
    def appending(self) -> bool:
        """Whether this extract appends (decided at its first row: asks `first_load` then)."""
        if self._append is None:
            self._append = bool(self.first_load()) if self.first_load is not None else False
        return self._append

    def _first(self, table: str, row: Mapping[str, Any]) -> bool:
        """In an appending extract, whether `row` is the first of its key there (else it is left out)."""
        keys = self._keys[table]
        key = tuple(row.get(k) for k in PRIMARY_KEYS[table])
        if key in keys:
            return False
        keys.add(key)
        return True

    def add_invoice(self, mapped: MappedInvoice) -> Iterator[Any]:
        """Buffer an invoice and its lines; yields full batches."""
        if self.appending and not self._first(INVOICES, mapped.invoice):
            return
        self._rows[INVOICES].append(mapped.invoice)
        if mapped.items:
            self._rows[INVOICE_ITEMS].extend(mapped.items)
        elif not self.appending:
            inv = mapped.invoice
            self._rows[INVOICE_ITEMS].append(
                {
                    "provider": inv["provider"],
                    "account": inv["account"],
                    "invoice_id": inv["invoice_id"],
                    "line_number": 0,
                    TOMBSTONE: True,
                }
            )
        if len(self._rows[INVOICE_ITEMS]) >= self.batch_rows or len(self._rows[INVOICES]) >= self.batch_rows:
            yield from self.flush()

    def add_arrow(self, invoices: pa.Table, items: pa.Table) -> Iterator[Any]:
        """Buffer invoices and their lines mapped a page at a time (a vectorised page mapper):
        the same rows, rules and tombstones as `add_invoice` of each; yields full batches."""
        if not invoices.num_rows:
            return
        if self.appending:
            ids = invoices.column("invoice_id").to_pylist()
            keys = [
                (p, a, i)
                for p, a, i in zip(
                    invoices.column("provider").to_pylist(), invoices.column("account").to_pylist(), ids, strict=True
                )
            ]
            if len(set(keys)) < len(keys) or not self._keys[INVOICES].isdisjoint(keys):
                # A key met twice in an appending extract: row by row, which keeps its first rows.
                for mapped in to_mapped(invoices, items):
                    yield from self.add_invoice(mapped)
                return
            self._keys[INVOICES].update(keys)
        else:
            bare = pc.invert(pc.is_in(invoices.column("invoice_id"), value_set=items.column("invoice_id")))
            if pc.any(bare).as_py():
                orphans = invoices.filter(bare)
                n = orphans.num_rows
                tombstones = arrow_table(
                    INVOICE_ITEMS,
                    {
                        "provider": orphans.column("provider"),
                        "account": orphans.column("account"),
                        "invoice_id": orphans.column("invoice_id"),
                        "line_number": pa.array([0] * n, pa.int64()),
                        TOMBSTONE: pa.array([True] * n, pa.bool_()),
                    },
                    n,
                )
                items = pa.concat_tables([items, tombstones])
        self._tables[INVOICES].append(apply_contract_rules_arrow(INVOICES, invoices))
        self._tables[INVOICE_ITEMS].append(apply_contract_rules_arrow(INVOICE_ITEMS, items))
        self._buffered[INVOICES] += invoices.num_rows
        self._buffered[INVOICE_ITEMS] += items.num_rows
        if self._buffered[INVOICE_ITEMS] >= self.batch_rows or self._buffered[INVOICES] >= self.batch_rows:
            yield from self.flush()

    def add_client(self, row: Mapping[str, Any]) -> Iterator[Any]:
        """Buffer a client row; yields a full batch."""
        if self.appending and not self._first(CLIENTS, row):
            return
        self._rows[CLIENTS].append(row)
        if len(self._rows[CLIENTS]) >= self.batch_rows:
            yield from self._emit(CLIENTS)

    def add_unmapped(self, row: Mapping[str, Any]) -> Iterator[Any]:
        """Buffer an `unmapped_records` row (or, with `_tombstone`, the removal of one)."""
        if self.appending and (row.get(TOMBSTONE) or not self._first(UNMAPPED, row)):
            return
        self._rows[UNMAPPED].append(row)
        if len(self._rows[UNMAPPED]) >= self.batch_rows:
            yield from self._emit(UNMAPPED)

    def flush(self) -> Iterator[Any]:
        """Yield whatever is buffered, parents before lines."""
        for table in (CLIENTS, INVOICES, INVOICE_ITEMS, UNMAPPED):
            yield from self._emit(table)

    def new_extract(self) -> None:
        """The next rows go to another dlt extract (a batch, sources/shared/sweep.py): each
        table's hints travel again with its first rows there, and whether it appends is asked again."""
        self._announced.clear()
        self._append = None
        for keys in self._keys.values():
            keys.clear()

    def _emit(self, table: str) -> Iterator[Any]:
        rows, tables = self._rows[table], self._tables[table]
        if not rows and not tables:
            return
        self._rows[table], self._tables[table], self._buffered[table] = [], [], 0
        if rows:
            tables.insert(0, rows_table(table, rows))
        arrow_table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        yield from self.emit_arrow(table, arrow_table)

    def emit_arrow(self, table: str, arrow_table: pa.Table) -> Iterator[Any]:
        """Hand an Arrow table of `table`'s schema to dlt, with the table's hints the first time
        in the extract."""
        if table in self._announced:
            yield dlt.mark.with_table_name(arrow_table, table)
        else:
            self._announced.add(table)
            hints = table_hints(table, append=self.appending)
            yield dlt.mark.with_hints(arrow_table, hints, create_table_variant=True)


def write_invoice(writer: TableWriter, mapped: MappedInvoice, stats: RunStats) -> Iterator[Any]:
    """Buffer a mapped invoice and count it in the run's stats: its rows and, when its own
    figures break the total rule, the mismatch (reported in the run summary, never hidden)."""
    if total_mismatch(mapped.invoice):
        stats.add(mismatches=1)
    stats.add(invoices=1, lines=len(mapped.items))
    yield from writer.add_invoice(mapped)
