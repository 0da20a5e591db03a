"""`invoice_history`: what each invoice looked like, run after run (docs/canonical-model.md,
`invoice_history`; docs/history.md).

Every invoice row a load writes passes through `TableWriter`, which hands its invoices to an
`Observer`: one history candidate per invoice (its key, the tracked columns, `deleted` false,
the run's id), in the same load package as the invoice rows, so that dlt commits the history
with the rows it describes and a package a killed run left is loaded, history included, by the
next run. The candidates are merged with dlt's `scd2` strategy:

- `row_version_column_name` is `_state_version`: the invoice's key and its tracked columns
  (`status`, `balance_due`, `total`, `due_date`, `currency`, `deleted`) as one text, so that a
  candidate equal to the invoice's current row adds nothing and `run_id` makes no version;
- `validity_column_names` are `valid_from` / `valid_to`, `active_record_timestamp` None (the
  current row's `valid_to` is NULL) and `boundary_timestamp` the run's start: one `valid_from`
  for every row a run writes, and the `valid_to` of the row it replaces;
- `destination_scope` limits what a merge may retire to the invoices of the package: an invoice
  absent from a load (not changed, or in another batch or account) keeps its current row.

Rows written in SQL (a deletion, an invoice listed again unchanged, the first state of an
invoice loaded before history was kept, a remap's correction: `pipelines/history.py`) carry
the same `_state_version`, computed by `state_version_sql` to the same text.

A run says what it is with `observe(run_id, started)` (the pipeline does, `pipelines/history.py`);
outside a run (a remap, a benchmark of the load path) no history is written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from dlt.extract.hints import make_hints

from sources.shared.values import MONEY_PRECISION, MONEY_SCALE

HISTORY = "invoice_history"
KEY = ("provider", "account", "invoice_id")
# The columns whose change makes a new history row (besides `deleted`).
TRACKED = ("status", "balance_due", "total", "due_date", "currency")
VALID_FROM, VALID_TO = "valid_from", "valid_to"
VERSION = "_state_version"
SEPARATOR = "\x1f"  # ASCII unit separator: between the parts of a state version
_MICROS = 10**MONEY_SCALE  # amounts enter a version as whole millionths

_TEXT, _BOOL = pa.string(), pa.bool_()
_DEC = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)

# (name, arrow type, dlt data type) of the rows a load hands to dlt; the merge adds the validity columns.
_COLUMNS: list[tuple[str, pa.DataType, str]] = [
    ("provider", _TEXT, "text"),
    ("account", _TEXT, "text"),
    ("invoice_id", _TEXT, "text"),
    ("status", _TEXT, "text"),
    ("balance_due", _DEC, "decimal"),
    ("total", _DEC, "decimal"),
    ("due_date", pa.date32(), "date"),
    ("currency", _TEXT, "text"),
    ("deleted", _BOOL, "bool"),
    ("run_id", _TEXT, "text"),
    (VERSION, _TEXT, "text"),
]
SCHEMA = pa.schema([pa.field(n, t, nullable=n not in (*KEY, "deleted", VERSION)) for n, t, _ in _COLUMNS])
COLUMNS = tuple(n for n, _, _ in _COLUMNS)


@dataclass(frozen=True)
class Run:
    """The run that observes: its id (`pipeline_runs.run_id`) and its start time (UTC)."""

    run_id: str
    started: dt.datetime


_current: list[Run] = []


def observe(run: Run | None) -> None:
    """Make `run` the run whose loads keep history (None: no run, no history)."""
    _current.clear()
    if run is not None:
        _current.append(run)


def current() -> Run | None:
    """The run that keeps history now, if any (one load runs at a time in a process)."""
    return _current[0] if _current else None


def dlt_columns() -> dict[str, dict[str, Any]]:
    columns: dict[str, dict[str, Any]] = {}
    for name, _, data_type in _COLUMNS:
        column: dict[str, Any] = {"data_type": data_type, "nullable": SCHEMA.field(name).nullable}
        if data_type == "decimal":
            column.update(precision=MONEY_PRECISION, scale=MONEY_SCALE)
        columns[name] = column
    return columns


def destination_scope() -> str:
    """The rows a merge may retire: the current rows of the invoices the package holds."""
    match = " AND ".join(f"s.{k} = {{table}}.{k}" for k in KEY)
    return f"EXISTS (SELECT 1 FROM {{staging_table}} AS s WHERE {match})"


def hints(run: Run) -> Any:
    """dlt hints of `invoice_history` for the candidates of `run` (see the module docstring)."""
    columns: Any = dlt_columns()  # typed loosely, as the canonical tables' hints (model.table_hints)
    disposition: Any = {
        "disposition": "merge",
        "strategy": "scd2",
        "validity_column_names": [VALID_FROM, VALID_TO],
        "active_record_timestamp": None,
        "boundary_timestamp": run.started,
        "row_version_column_name": VERSION,
        "destination_scope": destination_scope(),
    }
    return make_hints(table_name=HISTORY, write_disposition=disposition, columns=columns)


def _text(array: Any) -> Any:
    return pc.cast(array, pa.string())


def state_versions(table: pa.Table, deleted: bool) -> pa.Array:
    """`_state_version` of each row of an Arrow table with the key and tracked columns:
    key, status, balance_due and total in millionths, due_date in days since 1970-01-01,
    currency, deleted (1/0); a NULL as an empty part; parts joined by SEPARATOR."""
    micros = pa.scalar(Decimal(_MICROS), pa.decimal128(7, 0))
    parts = [table.column(k) for k in (*KEY, "status")]
    for amount in ("balance_due", "total"):
        parts.append(_text(pc.cast(pc.multiply(table.column(amount), micros), pa.int64())))
    parts.append(_text(pc.cast(table.column("due_date"), pa.int32())))
    parts.append(table.column("currency"))
    parts.append(pa.array(["1" if deleted else "0"] * table.num_rows, pa.string()))
    joined: pa.Array = pc.binary_join_element_wise(*parts, SEPARATOR, null_handling="replace", null_replacement="")
    return joined


def state_version_sql(alias: str, deleted: str) -> str:
    """The SQL expression (DuckDB and Postgres alike) that gives the `_state_version` of the row
    `alias` of `invoices` or `invoice_history` as `state_versions` does, `deleted` being a SQL
    boolean expression."""

    def micros(column: str) -> str:
        wide = f"CAST({alias}.{column} AS DECIMAL(38, {MONEY_SCALE}))"  # DuckDB keeps the operand's precision
        return f"COALESCE(CAST(CAST({wide} * {_MICROS} AS BIGINT) AS VARCHAR), '')"

    parts = [f"{alias}.{k}" for k in KEY]
    parts.append(f"COALESCE({alias}.status, '')")
    parts += [micros("balance_due"), micros("total")]
    parts.append(f"COALESCE(CAST({alias}.due_date - DATE '1970-01-01' AS VARCHAR), '')")
    parts.append(f"COALESCE({alias}.currency, '')")
    parts.append(f"CASE WHEN {deleted} THEN '1' ELSE '0' END")
    return f"CONCAT_WS(CHR({ord(SEPARATOR)}), {', '.join(parts)})"


def candidates(invoices: pa.Table, run: Run) -> pa.Table:
    """The history candidates of invoice rows (an Arrow table of `invoices`' schema)."""
    rows = invoices.num_rows
    columns = {name: invoices.column(name) for name in (*KEY, *TRACKED)}
    columns["deleted"] = pa.array([False] * rows, _BOOL)
    columns["run_id"] = pa.array([run.run_id] * rows, _TEXT)
    table = pa.Table.from_pydict(columns)
    columns[VERSION] = state_versions(table, deleted=False)
    return pa.Table.from_arrays([columns[n] for n in COLUMNS], schema=SCHEMA)


class Observer:
    """The history candidates of one `TableWriter`, none outside a run. An invoice met twice in
    one batch of rows keeps its first state (an appending extract keeps an invoice's first row
    only, `TableWriter`); nothing is remembered from one batch to the next, so that memory stays
    flat however many invoices an extract holds."""

    def observe(self, invoices: pa.Table) -> pa.Table | None:
        """The candidates of `invoices` (rows handed to dlt), or None outside a run."""
        run = current()
        if run is None or not invoices.num_rows:
            return None
        found = candidates(invoices, run)
        keys = pc.binary_join_element_wise(*(found.column(k) for k in KEY), SEPARATOR)
        if len(pc.unique(keys)) < found.num_rows:
            positions = pa.table({"key": keys, "at": pa.array(range(found.num_rows), pa.int64())})
            first = positions.group_by("key", use_threads=False).aggregate([("at", "min")]).column("at_min")
            found = found.take(pc.take(first, pc.sort_indices(first)))  # each key's first row, in order
        return found
