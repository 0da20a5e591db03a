"""What every vectorised page mapper (`sources/<provider>/page.py`) is built from: a page read
into columns record by record, the values that repeat across a page read once, money taken only
when DECIMAL(18, 6) holds it exactly, and a record the columns cannot take exactly left to the
record mapper (`Fallback`, then `PageRows.fallback`), which stays the reference.

Nothing here knows a provider: each page mapper keeps its provider's quirks itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa

from sources.shared.declaration import PageRows
from sources.shared.model import INVOICE_ITEMS, INVOICES, arrow_table
from sources.shared.values import MONEY_PRECISION, MONEY_SCALE, ValueProblem, dumps, fit_money

DEC = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)
MISSING = object()
PLAIN = re.compile(r"-?\d{1,12}(\.\d{1,6})?")  # a number as text that fits DECIMAL(18, 6)
CACHE_LIMIT = 100_000
_INTEGER_LIMIT = 10 ** (MONEY_PRECISION - MONEY_SCALE)
_REFUSED = object()

Row = tuple[Any, ...]


class Fallback(Exception):
    """This record is left to the record mapper."""


def cached(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`read` once per distinct hashable value, keyed by type too: `True`, `1` and
    `Decimal("1.0")` are equal in Python but not to the record mapper. A value `read` refuses
    (a `ValueProblem`, or any `ValueError`, `TypeError` or `OverflowError`) is remembered as
    refused, and raises `Fallback` each time: the record mapper's to report in its own words."""
    seen: dict[Any, Any] = {}

    def cached(value: Any) -> Any:
        key = (type(value), value)
        try:
            found = seen.get(key, MISSING)
        except TypeError:  # not hashable: an unusual shape
            raise Fallback from None
        if found is MISSING:
            if len(seen) >= CACHE_LIMIT:
                seen.clear()
            try:
                found = read(value)
            except (ValueError, TypeError, OverflowError):  # ValueProblem among them
                found = _REFUSED
            seen[key] = found
        if found is _REFUSED:
            raise Fallback
        return found

    return cached


def only_text(read: Callable[[str], Any]) -> Callable[[Any], Any]:
    """`read` for text; any other type is refused (the record mapper's to judge)."""

    def text_only(value: Any) -> Any:
        if type(value) is not str:
            raise ValueProblem(f"expected text, got {type(value).__name__}")
        return read(value)

    return text_only


def optional_money(value: Any) -> Decimal | None:
    """A money value the columns take as it is: an exact `Decimal` that DECIMAL(18, 6) holds
    exactly (`values.fit_money`), an integer of at most 12 digits, None, or a plain number as
    text (`"12.30"`, read exactly; `""` is None). Anything else (other text, a float, a boolean,
    an amount past the column) is the record mapper's to judge: Arrow alone would not do, as it
    reads `1E-600000` as 0 instead of refusing it."""
    kind = type(value)
    if kind is Decimal:
        if fit_money(value) is None:
            raise Fallback
        return value
    if kind is int:
        if not -_INTEGER_LIMIT < value < _INTEGER_LIMIT:
            raise Fallback
        return Decimal(value)
    if value is None:
        return None
    if kind is str:
        stripped = value.strip()
        if not stripped:
            return None
        if PLAIN.fullmatch(stripped):
            return Decimal(stripped)
    raise Fallback


def money(value: Any) -> Decimal:
    """A required amount: missing is the record mapper's to refuse."""
    found = optional_money(value)
    if found is None:
        raise Fallback
    return found


def text(value: Any) -> str | None:
    """`values.to_text` for the types it writes as they are: text, None and integers; any other
    type is left to the record mapper."""
    kind = type(value)
    if kind is str:
        return value
    if value is None:
        return None
    if kind is int:
        return str(value)
    raise Fallback


def constant(value: Any, n: int, kind: pa.DataType) -> pa.Array:
    """`n` times `value`, as an Arrow array of `kind`."""
    return pa.repeat(pa.scalar(value, kind), n) if n else pa.array([], kind)


def page_rows(
    provider: str, account: str, invoices: Mapping[str, Any], items: Mapping[str, Any], fallback: list[int]
) -> PageRows:
    """A page's canonical Arrow rows from its columns (name → values or Arrow array; a column not
    given is all NULL), the `provider` and `account` key columns added; `fallback`, the positions
    left to the record mapper. Raises what `model.arrow_table` raises for a value that does not
    fit its column exactly."""
    n, m = len(invoices["invoice_id"]), len(items["invoice_id"])
    keys = (("provider", provider), ("account", account))
    return PageRows(
        arrow_table(INVOICES, {**invoices, **{name: constant(value, n, pa.string()) for name, value in keys}}, n),
        arrow_table(INVOICE_ITEMS, {**items, **{name: constant(value, m, pa.string()) for name, value in keys}}, m),
        fallback,
    )


def map_page(
    records: Sequence[Any],
    columns: Callable[[Any], tuple[Row, list[Row]]],
    names: tuple[Sequence[str], Sequence[str]],
    tables: Callable[[dict[str, list[Any]], dict[str, list[Any]], list[int]], PageRows],
) -> PageRows | None:
    """A page into canonical Arrow rows: each record read by `columns` into its invoice's values
    and its lines' (in the order `names` gives: the invoice columns, the line columns), or left
    to the record mapper where it raises `Fallback`; then `tables` builds the Arrow rows from the
    columns and the positions left. None where Arrow refuses a value (a derived amount past
    DECIMAL(18, 6), say): the whole page goes record by record."""
    rows: list[Row] = []
    lines: list[Row] = []
    fallback: list[int] = []
    for position, record in enumerate(records):
        try:
            row, its_lines = columns(record)
        except Fallback:
            fallback.append(position)
            continue
        rows.append(row)
        lines += its_lines
    invoice_names, line_names = names
    try:
        return tables(_transpose(invoice_names, rows), _transpose(line_names, lines), fallback)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None


def _transpose(names: Sequence[str], rows: list[Row]) -> dict[str, list[Any]]:
    if not rows:
        return {name: [] for name in names}
    return {name: list(values) for name, values in zip(names, zip(*rows, strict=True), strict=True)}


def _exact(value: Any) -> Any:
    if type(value) is Decimal:
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode(value: Any) -> str | None:
    """`values.dumps` where orjson encodes it (None where `dumps` would take its other encoder)."""
    try:
        return orjson.dumps(value, default=_exact).decode()
    except orjson.JSONEncodeError:
        return None


def raw_with_lines(record: dict[str, Any], key: str, lines: list[Row]) -> str:
    """`values.dumps(record)`, the JSON of its lines (`record[key]`, each encoded already with
    `encode` as its line's last value, its `raw`) spliced in rather than encoded twice: orjson
    writes a list as `[a,b]` and keeps the keys' order. A line `encode` could not write gets its
    `raw` from `dumps` here."""
    raws = [line[-1] for line in lines]
    if not raws or None in raws:
        for n, line in enumerate(lines):
            if line[-1] is None:
                lines[n] = (*line[:-1], dumps(record[key][n]))
        return dumps(record)
    spliced = encode({**record, key: orjson.Fragment("[" + ",".join(raws) + "]")})
    return spliced if spliced is not None else dumps(record)
