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

from sources.shared import history
from sources.shared.values import MONEY_PRECISION, MONEY_SCALE, fit_money

INVOICES = "invoices"
INVOICE_ITEMS = "invoice_items"
CLIENTS = "clients"
UNMAPPED = "unmapped_records"

CANONICAL_STATUSES = ("draft", "open", "partially_paid", "paid", "void", "uncollectible")
TOMBSTONE = "_tombstone"
# What a mapping read besides the record (a page's announced formats, a looked-up value), kept
# with the payload so that `remap` maps it again exactly as the load did (`declaration.Context`).
INPUTS = "_mapping_inputs"

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
        (INPUTS, _JSON, "json"),
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
        (INPUTS, _JSON, "json"),
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
        (INPUTS, _JSON, "json"),
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


_DECIMAL_COLUMNS = {table: tuple(n for n, a, _ in cols if a == _DEC) for table, cols in _COLUMNS.items()}


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
    """dlt warns whenever an Arrow column's type differs from its declared hint. The one kind of
    difference in our tables is deliberate: Arrow has no JSON type dlt accepts, so `raw` (and
    `_mapping_inputs`) travel as text and the `json` hint makes them JSON columns. Every other
    hint matches the Arrow schema exactly (a test checks this at INFO level), so this warning
    carries no news for a user."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "several column hints were different" not in record.getMessage()


logging.getLogger("dlt").addFilter(_RawJsonHintNotice())


TOTAL_TOLERANCE = Decimal("0.01")
_TOTAL_PARTS = ("subtotal", "tax_total", "shipping_total", "withholding_total", "total")


def total_mismatch(invoice: Mapping[str, Any]) -> bool:
    """Whether an invoice row breaks the contract's rule
    `total = subtotal + tax_total + shipping_total − withholding_total` by more than 0.01.

    Such a row keeps the provider's `total`; the run counts the mismatch for its summary. A row
    missing one of the figures cannot be checked and is not counted.
    """
    parts: list[Decimal] = [invoice[k] for k in _TOTAL_PARTS if invoice.get(k) is not None]
    if len(parts) < len(_TOTAL_PARTS):
        return False
    subtotal, tax, shipping, withholding, total = parts
    return bool(abs(subtotal + tax + shipping - withholding - total) > TOTAL_TOLERANCE)


def total_mismatches(invoices: pa.Table) -> int:
    """How many rows of an Arrow `invoices` table break the total rule (`total_mismatch`)."""
    subtotal, tax, shipping, withholding, total = (invoices.column(k) for k in _TOTAL_PARTS)
    difference = pc.subtract(pc.subtract(pc.add(pc.add(subtotal, tax), shipping), withholding), total)
    broken = pc.greater(pc.abs(difference), pa.scalar(TOTAL_TOLERANCE, difference.type))
    return int(pc.sum(pc.fill_null(broken, False).cast(pa.int64())).as_py() or 0)


# Text columns that may hold NULL: every text column except the keys (which are never NULL).
_NULLABLE_TEXT: dict[str, tuple[str, ...]] = {
    table: tuple(name for name, _, data_type in columns if data_type == "text" and name not in PRIMARY_KEYS[table])
    for table, columns in _COLUMNS.items()
}


def contract_rules(table: str, data: pa.Table) -> pa.Table:
    """The contract's rules that hold for every provider, applied to rows of `table` as they
    become columns (`docs/canonical-model.md`):

    - text columns hold NULL, never an empty string: a provider's `""` is stored as NULL
      (key columns and `raw`, the untouched payload, are left as they are);
    - an invoice's `balance_due` is NULL for drafts and 0 for void documents.
    """
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


def to_columns(table: str, rows: Sequence[Mapping[str, Any]]) -> tuple[pa.Table, dict[int, str]]:
    """Rows of `table` as an Arrow table of its schema, and the rows left out because a value
    does not fit its column exactly (position → why).

    This is where every amount is checked once: an amount (read, or derived by a mapping: a
    sum, a product) past DECIMAL(18, 6) or with a digit past its sixth decimal, or text that is
    not text, never reaches the warehouse rounded or cast. Arrow refuses such values in C; the
    rare column it refuses is then read value by value to name the rows. A column not in the
    rows is all NULL.
    """
    schema = SCHEMAS[table]
    refused: dict[int, str] = {}
    columns: list[list[Any]] = [[row.get(f.name) for row in rows] for f in schema]
    arrays: list[pa.Array | None] = []
    for column, values in zip(schema, columns, strict=True):
        try:
            array = pa.array(values, column.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
            array = None
        if array is None or (column.type == _DEC and array.null_count < len(values) and _zeroed(values, array)):
            array = None
            for position, value in enumerate(values):
                reason = _unfit(column, value)
                if reason is not None:
                    refused.setdefault(position, f"{table}.{column.name}: {reason}")
        arrays.append(array)
    if refused or any(a is None for a in arrays):  # rare: every column again, without the refused rows
        columns = [[v for i, v in enumerate(values) if i not in refused] for values in columns]
        arrays = [pa.array(values, f.type) for f, values in zip(schema, columns, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema), refused


_ZERO = pa.scalar(Decimal(0), _DEC)


def _zeroed(values: list[Any], array: pa.Array) -> bool:
    """Whether Arrow read a non-zero amount as 0 (`1E-600000`: a digit far past the sixth decimal)."""
    zeros = pc.equal(array, _ZERO)
    if not pc.any(zeros).as_py():  # nulls are skipped
        return False
    return any(values[i] != 0 for i in pc.indices_nonzero(pc.fill_null(zeros, False)).to_pylist())


def _unfit(column: pa.Field, value: Any) -> str | None:
    """Why `value` cannot be written to `field` exactly, or None."""
    if value is None:
        return None
    if column.type == _DEC:
        if type(value) is Decimal or type(value) is int:
            if fit_money(Decimal(value)) is None:
                return f"{value} does not fit DECIMAL({MONEY_PRECISION}, {MONEY_SCALE}) exactly"
            return None
        return f"{value!r} is not an exact amount"
    if column.type == _TEXT and type(value) is not str:
        return f"expected text, got {type(value).__name__} {value!r}"
    try:
        pa.array([value], column.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError) as exc:
        return f"{value!r} is not a {column.type}: {exc}"
    return None


@dataclass
class MappedInvoice:
    """One canonical invoice row and its line rows, as a mapping produces them."""

    invoice: dict[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Added:
    """What `TableWriter.add_invoices` took: rows written, and the invoices it refused."""

    invoices: int = 0
    lines: int = 0
    mismatches: int = 0
    refused: dict[int, str] = field(default_factory=dict)  # position in the batch → why


class TableWriter:
    """Collects canonical rows, a page at a time, as Arrow tables and hands them to dlt in batches.

    The first table yielded for each canonical table carries its hints (a dlt table variant);
    later ones only name the table. Use inside a `@dlt.resource` generator:

        writer = TableWriter()
        for page in pages:
            added = writer.add_invoices(mapped_invoices_of(page))
            yield from writer.ready()
        yield from writer.flush()

    **First loads append.** With `first_load` set, the writer asks it once per dlt extract,
    before the extract's first row, whether the destination holds no row of the account yet;
    if so, that extract's tables are appended instead of merged (no staging copy, no delete):
    tombstones are dropped (they would delete nothing) and a key met twice in the extract keeps
    its first rows only, so the tables hold what a merge would. The question is asked of the
    destination itself, after every earlier package was loaded, so a first run that committed
    a batch and was killed is merged into by the next run, never appended to twice.

    Args:
        batch_rows: rows per table buffered before they are handed to dlt.
        first_load: whether the destination holds no row of the account (None: always merge).
    """

    def __init__(self, batch_rows: int = 20_000, first_load: Callable[[], bool] | None = None) -> None:
        self.batch_rows = batch_rows
        self.first_load = first_load
        self._announced: set[str] = set()
        self._append: bool | None = None  # decided at the first row of each extract
        self._keys: dict[str, set[tuple[Any, ...]]] = {table: set() for table in _COLUMNS}
        self._tables: dict[str, list[pa.Table]] = {table: [] for table in _COLUMNS}
        self._buffered: dict[str, int] = dict.fromkeys(_COLUMNS, 0)
        self._unmapped: list[Mapping[str, Any]] = []
        self._history = history.Observer()  # invoice_history candidates (sources/shared/history.py)

    @property
    def appending(self) -> bool:
        """Whether this extract appends (decided at its first row: asks `first_load` then)."""
        if self._append is None:
            self._append = bool(self.first_load()) if self.first_load is not None else False
        return self._append

    def _first(self, table: str, row: Mapping[str, Any]) -> bool:
        """In an appending extract, whether `row` is the first of its key there (else it is left out)."""
        keys = self._keys[table]
        key = tuple(row[k] for k in PRIMARY_KEYS[table])
        if key in keys:
            return False
        keys.add(key)
        return True

    def add_invoices(self, batch: Sequence[MappedInvoice]) -> Added:
        """Take mapped invoices and their lines (a page's); an invoice with a value its columns
        cannot hold exactly is refused, with its lines, and named in `Added.refused`."""
        added = Added()
        appending = self.appending
        invoices: list[dict[str, Any]] = []
        lines: list[dict[str, Any]] = []
        owners: list[int] = []  # the position in `invoices` of each line
        positions: list[int] = []  # the position in `batch` of each invoice taken
        for position, mapped in enumerate(batch):
            row = mapped.invoice
            if appending and not self._first(INVOICES, row):
                continue
            owner = len(invoices)
            invoices.append(row)
            positions.append(position)
            if mapped.items:
                lines.extend(mapped.items)
                owners.extend([owner] * len(mapped.items))
            elif not appending:
                lines.append(
                    {
                        "provider": row["provider"],
                        "account": row["account"],
                        "invoice_id": row["invoice_id"],
                        "line_number": 0,
                        TOMBSTONE: True,
                    }
                )
                owners.append(owner)
        if not invoices:
            return added
        invoice_table, bad = to_columns(INVOICES, invoices)
        line_table, bad_lines = to_columns(INVOICE_ITEMS, lines)
        refused = dict(bad)
        for line, reason in bad_lines.items():
            refused.setdefault(owners[line], reason)
        if refused:
            # Drop the refused invoices with every line of theirs, whichever side refused them.
            kept_invoices = [i for i in range(len(invoices)) if i not in bad]
            invoice_table = invoice_table.filter(pa.array([i not in refused for i in kept_invoices], pa.bool_()))
            kept = [i for i in range(len(lines)) if i not in bad_lines]
            line_table = line_table.filter(pa.array([owners[i] not in refused for i in kept], pa.bool_()))
            added.refused = {positions[i]: reason for i, reason in refused.items()}
        invoice_table = contract_rules(INVOICES, invoice_table)
        line_table = contract_rules(INVOICE_ITEMS, line_table)
        added.invoices = invoice_table.num_rows
        added.lines = int(pc.sum(pc.invert(pc.fill_null(line_table.column(TOMBSTONE), False))).as_py() or 0)
        added.mismatches = total_mismatches(invoice_table)
        self._buffer(INVOICES, invoice_table)
        self._buffer(INVOICE_ITEMS, line_table)
        return added

    def add_clients(self, rows: Sequence[dict[str, Any]]) -> dict[int, str]:
        """Take client rows; returns the rows refused (position → why), as `add_invoices` does."""
        taken = [r for r in rows if not self.appending or self._first(CLIENTS, r)]
        if not taken:
            return {}
        table, refused = to_columns(CLIENTS, taken)
        self._buffer(CLIENTS, contract_rules(CLIENTS, table))
        if not refused:
            return {}
        by_row = {id(row): position for position, row in enumerate(rows)}
        return {by_row[id(taken[i])]: reason for i, reason in refused.items()}

    def add_unmapped(self, row: Mapping[str, Any]) -> None:
        """Take an `unmapped_records` row (or, with `_tombstone`, the removal of one)."""
        if self.appending and (row.get(TOMBSTONE) or not self._first(UNMAPPED, row)):
            return
        self._unmapped.append(row)

    def _buffer(self, table: str, data: pa.Table) -> None:
        if data.num_rows:
            self._tables[table].append(data)
            self._buffered[table] += data.num_rows

    def ready(self) -> Iterator[Any]:
        """Yield the tables whose buffer is full (parents before lines)."""
        if max(self._buffered[INVOICES], self._buffered[INVOICE_ITEMS]) >= self.batch_rows:
            yield from self._emit(INVOICES)
            yield from self._emit(INVOICE_ITEMS)
        if self._buffered[CLIENTS] >= self.batch_rows:
            yield from self._emit(CLIENTS)
        if len(self._unmapped) >= self.batch_rows:
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
        if table == UNMAPPED and self._unmapped:
            data, _ = to_columns(UNMAPPED, self._unmapped)
            self._unmapped = []
            self._tables[UNMAPPED].append(data)
        tables = self._tables[table]
        if not tables:
            return
        self._tables[table], self._buffered[table] = [], 0
        data = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        yield from self.emit_arrow(table, data)
        if table == INVOICES and (observed := self._history.observe(data)) is not None:
            yield from self.emit_arrow(history.HISTORY, observed)  # in the same package as the invoices

    def emit_arrow(self, table: str, arrow_table: pa.Table) -> Iterator[Any]:
        """Hand an Arrow table of `table`'s schema to dlt, with the table's hints the first time
        in the extract."""
        if table in self._announced:
            yield dlt.mark.with_table_name(arrow_table, table)
        else:
            self._announced.add(table)
            run = history.current()
            if table == history.HISTORY and run is not None:
                hints = history.hints(run)
            else:
                hints = table_hints(table, append=self.appending)
            yield dlt.mark.with_hints(arrow_table, hints, create_table_variant=True)
