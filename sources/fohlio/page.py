"""Fohlio client invoices, a page at a time, into Arrow rows: the vectorised twin of
`mapping.map_invoice` (with `mapping.resolve_currency`), which stays the reference (a test
compares both, row for row).

Each page is read into columns in one pass; the values that repeat across a page (dates,
timestamps, statuses, currencies) are read once per distinct value with the record mapper's own
functions, keyed by type as well as value, and the invoice amounts are built straight into
DECIMAL(18, 6) Arrow arrays from the decoded `Decimal`s, so a value that does not fit exactly is
refused by Arrow rather than rounded. The currency is resolved with `mapping.resolve_currency`
itself, against the page's project currencies and the configured fallback, once per distinct
(project id, client currency) pair of the page. A record of any shape the columns do not take
exactly (money as text other than a plain number, an undocumented status, a currency that cannot
be resolved, an id or a label that is not text or an integer, a value that is not an object or a
list where one is expected, a line whose quantity × price does not fit) is left to the record
mapper (`PageRows.fallback`); so is a whole page Arrow refuses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa

from sources.fohlio import mapping
from sources.fohlio.settings import NAME as PROVIDER
from sources.shared.declaration import Context, PageRows
from sources.shared.model import INVOICE_ITEMS, INVOICES, arrow_table
from sources.shared.values import (
    MONEY_PRECISION,
    MONEY_SCALE,
    ValueProblem,
    dumps,
    parse_date,
    parse_timestamp,
    to_decimal,
)

_DEC = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)
_MISSING = object()
_PLAIN = re.compile(r"-?\d{1,12}(\.\d{1,6})?")  # a number as text that fits DECIMAL(18, 6)
_CACHE_LIMIT = 100_000


class _Fallback(Exception):
    """This record is left to the record mapper."""


def _cached(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`read` once per distinct value (a `ValueProblem` is remembered as well), keyed by type
    too: `True`, `1` and `Decimal("1.0")` are equal in Python but not to the record mapper.
    Only text and None are read here; any other type is the record mapper's to judge."""
    seen: dict[Any, Any] = {}

    def cached(value: Any) -> Any:
        if value is None:
            return None
        if type(value) is not str:
            raise _Fallback
        key = (str, value)
        found = seen.get(key, _MISSING)
        if found is _MISSING:
            if len(seen) >= _CACHE_LIMIT:
                seen.clear()
            try:
                found = read(value)
            except ValueProblem as problem:
                found = problem
            seen[key] = found
        if isinstance(found, ValueProblem):
            raise _Fallback
        return found

    return cached


_read_date = _cached(lambda v: parse_date(v, field="date"))
_read_timestamp = _cached(lambda v: parse_timestamp(v, field="timestamp"))


def _optional_money(value: Any) -> Any:
    """A money value the columns take as it is: a finite `Decimal` or an integer (Arrow checks
    that it fits), None, or a plain number as text (`"12.30"`, read exactly; `""` is None);
    anything else (other text, a float, a boolean) is the record mapper's to judge."""
    kind = type(value)
    if kind is Decimal:
        # Arrow reads an amount below its scale as 0 when the exponent is extreme (1E-600000),
        # instead of refusing it: the record mapper's to refuse.
        if not value.is_finite() or (value and value.adjusted() < -MONEY_SCALE):
            raise _Fallback
        return value
    if kind is int or value is None:
        return value
    if kind is str:
        text = value.strip()
        if not text:
            return None
        if _PLAIN.fullmatch(text):
            return Decimal(text)
    raise _Fallback


def _money(value: Any) -> Any:
    """A required amount (`amount`, `tax_amount`, `amount_with_tax`): missing is the record mapper's to refuse."""
    found = _optional_money(value)
    if found is None:
        raise _Fallback
    return found


def _exact_money(value: Any) -> Decimal | None:
    """`to_decimal` itself, for the amounts a product is computed from."""
    try:
        return to_decimal(value)
    except ValueProblem:
        raise _Fallback from None


def _text(value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        return value
    if value is None:
        return None
    if kind is int:
        return str(value)
    raise _Fallback


def _due_date(terms: Any) -> Any:
    """`mapping.due_date` for a list of term objects (or none); other shapes fall back."""
    if terms is None:
        return None
    if type(terms) is not list:
        raise _Fallback
    earliest = None
    for term in terms:
        if type(term) is not dict:
            raise _Fallback
        found = _read_date(term.get("due_date"))
        if found is not None and (earliest is None or found < earliest):
            earliest = found
    return earliest


class _Currencies:
    """`mapping.resolve_currency` for one page's context, once per distinct (project id, client
    currency) pair; a record whose currency it cannot resolve is left to the record mapper, which
    reports it with its own words. The project currencies are looked up on first use, as the
    record mapper does: a page with nothing to map fetches nothing."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.projects: Any = _MISSING
        self.fallback = context.options.get("currency")
        self.seen: dict[Any, Any] = {}

    def __call__(self, record: dict[str, Any]) -> str:
        if self.projects is _MISSING:
            self.projects = self.context.lookup("projects")
        project_id, client = record.get("project_id"), record.get("client")
        data = client.get("data") if isinstance(client, Mapping) else None
        currency = data.get("currency", _MISSING) if isinstance(data, Mapping) else _MISSING
        if type(project_id) not in (str, int, type(None)) or type(currency) not in (str, type(None), object):
            return self._resolve(record)  # an unusual shape: read as it is, not remembered
        key = (type(project_id), project_id, type(currency), currency)
        found = self.seen.get(key, _MISSING)
        if found is _MISSING:
            try:
                found = mapping.resolve_currency(record, self.projects, self.fallback)
            except ValueProblem as problem:
                found = problem
            self.seen[key] = found
        if isinstance(found, ValueProblem):
            raise _Fallback
        return str(found)

    def _resolve(self, record: dict[str, Any]) -> str:
        try:
            return mapping.resolve_currency(record, self.projects, self.fallback)
        except ValueProblem:
            raise _Fallback from None


# The columns `_columns` reads, in its order.
_INVOICE_COLUMNS = (
    "invoice_id",
    "client_id",
    "client_name",
    "number",
    "status",
    "provider_status",
    "issue_date",
    "due_date",
    "currency",
    "subtotal",
    "tax_total",
    "total",
    "balance_due",
    "created_at",
    "updated_at",
    "notes",
    "raw",
)
_LINE_COLUMNS = (
    "invoice_id",
    "line_number",
    "item_id",
    "name",
    "description",
    "quantity",
    "unit",
    "unit_price",
    "subtotal",
    "raw",
)


def map_invoice_page(records: Sequence[Any], context: Context) -> PageRows | None:
    """One page of `GET /client_invoices` records into canonical Arrow rows."""
    currencies = _Currencies(context)
    rows: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    fallback: list[int] = []
    for position, record in enumerate(records):
        try:
            row, its_lines = _columns(record, currencies)
        except _Fallback:
            fallback.append(position)
            continue
        rows.append(row)
        lines += its_lines
    inv = _transpose(_INVOICE_COLUMNS, rows)
    line = _transpose(_LINE_COLUMNS, lines)
    try:
        return _tables(context.account, inv, line, fallback)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None  # a value Arrow does not take exactly: the whole page goes record by record


def _transpose(names: Sequence[str], rows: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
    if not rows:
        return {name: [] for name in names}
    return {name: list(values) for name, values in zip(names, zip(*rows, strict=True), strict=True)}


def _constant(value: Any, kind: pa.DataType, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, kind), n) if n else pa.array([], kind)


def _tables(account: str, inv: dict[str, list[Any]], line: dict[str, list[Any]], fallback: list[int]) -> PageRows:
    n, m = len(inv["invoice_id"]), len(line["invoice_id"])
    zero = Decimal(0)
    invoices = arrow_table(
        INVOICES,
        {
            **inv,
            "provider": _constant(PROVIDER, pa.string(), n),
            "account": _constant(account, pa.string(), n),
            "document_type": _constant("invoice", pa.string(), n),
            "is_archived": _constant(False, pa.bool_(), n),
            "subtotal": pa.array(inv["subtotal"], _DEC),
            "tax_total": pa.array(inv["tax_total"], _DEC),
            "total": pa.array(inv["total"], _DEC),
            "balance_due": pa.array(inv["balance_due"], _DEC),
            "discount_total": _constant(zero, _DEC, n),
            "withholding_total": _constant(zero, _DEC, n),
            "shipping_total": _constant(zero, _DEC, n),
        },
        n,
    )
    items = arrow_table(
        INVOICE_ITEMS,
        {
            **line,
            "provider": _constant(PROVIDER, pa.string(), m),
            "account": _constant(account, pa.string(), m),
            "discount_amount": _constant(zero, _DEC, m),
        },
        m,
    )
    return PageRows(invoices, items, fallback)


def _columns(record: Any, currency: _Currencies) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One invoice's values (in `_INVOICE_COLUMNS` order) and its lines'; `_Fallback` for
    anything the columns would not take exactly as `map_invoice` does."""
    if type(record) is not dict:
        raise _Fallback
    get = record.get
    invoice_id = _text(get("id"))
    if not invoice_id:
        raise _Fallback
    provider_status = get("status")
    if type(provider_status) is not str:
        raise _Fallback
    status = mapping.STATUS_MAP.get(provider_status)
    if status is None:
        raise _Fallback
    client = get("client")
    if client is None:
        client_id = client_name = None
    elif type(client) is dict:
        client_id, client_name = _text(client.get("id")), _text(client.get("name"))
    else:
        raise _Fallback
    row = (
        invoice_id,
        client_id,
        client_name,
        _text(get("label")) or None,
        status,
        provider_status,
        _read_date(get("invoice_date")),
        _due_date(get("payment_terms")),
        currency(record),
        _money(get("amount")),
        _money(get("tax_amount")),
        _money(get("amount_with_tax")),
        _optional_money(get("balance")),
        _read_timestamp(get("created_at")),
        _read_timestamp(get("updated_at")),
        _text(get("note")),
    )
    items = get("items")
    lines: list[tuple[Any, ...]] = []
    if items is not None:
        if type(items) is not list:
            raise _Fallback
        for number, item in enumerate(items, 1):
            if type(item) is not dict:
                raise _Fallback
            it = item.get
            quantity, price = _exact_money(it("quantity")), _exact_money(it("price"))
            subtotal = _exact_money(quantity * price) if quantity is not None and price is not None else None
            lines.append(
                (
                    invoice_id,
                    number,
                    _text(it("id")),
                    _text(it("name")),
                    _text(it("description")),
                    quantity,
                    _text(it("unit_type")),
                    price,
                    subtotal,
                    _encode(item),
                )
            )
    return (*row, _raw(record, lines)), lines


def _exact(value: Any) -> Any:
    if type(value) is Decimal:
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _encode(value: Any) -> str | None:
    """`values.dumps` where orjson encodes it (None where `dumps` would take its other encoder)."""
    try:
        return orjson.dumps(value, default=_exact).decode()
    except orjson.JSONEncodeError:
        return None


def _raw(record: dict[str, Any], lines: list[tuple[Any, ...]]) -> str:
    """`values.dumps(record)`, its lines' JSON (encoded already, for their own `raw`) spliced in
    rather than encoded twice: orjson writes a list as `[a,b]` and keeps the keys' order."""
    raws = [line[-1] for line in lines]
    if not raws or None in raws:
        for n, line in enumerate(lines):
            if line[-1] is None:
                lines[n] = (*line[:-1], dumps(record["items"][n]))
        return dumps(record)
    spliced = _encode({**record, "items": orjson.Fragment("[" + ",".join(raws) + "]")})
    return spliced if spliced is not None else dumps(record)
