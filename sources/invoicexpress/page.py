"""InvoiceXpress documents, a page at a time, into Arrow rows: the vectorised twin of
`mapping.map_invoice`, which stays the reference (a test compares both, row for row).

Each page is read into columns in one pass; the values that repeat across a page (dates,
currency names, document types, statuses) are read once per distinct value with the record
mapper's own functions, and the money columns are built straight into DECIMAL(18, 6) Arrow
arrays from the decoded `Decimal`s, so a value that does not fit exactly is refused by Arrow
rather than rounded. The derived columns (withholding, balance due) are computed over the
columns. A record of any shape the columns do not take exactly (money sent as text, a status
or a currency the record mapper would reject, a value that is not an object where one is
expected) is left to the record mapper (`PageRows.fallback`); so is a whole page Arrow refuses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from sources.invoicexpress import mapping
from sources.invoicexpress.settings import NAME as PROVIDER
from sources.shared.declaration import Context, PageRows
from sources.shared.model import INVOICE_ITEMS, INVOICES, arrow_table
from sources.shared.values import MONEY_PRECISION, MONEY_SCALE, ValueProblem, dumps, parse_dmy, to_bool

_DEC = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)
_ZERO = pa.scalar(Decimal(0), _DEC)
_MISSING = object()
_PLAIN = re.compile(r"-?\d{1,12}(\.\d{1,6})?")  # a number as text that fits DECIMAL(18, 6)
_CACHE_LIMIT = 100_000


class _Fallback(Exception):
    """This record is left to the record mapper."""


def _cached(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`read` once per distinct hashable value (a `ValueProblem` is remembered as well), keyed by
    type too: `True`, `1` and `Decimal("1.0")` are equal in Python but not to the record mapper."""
    seen: dict[Any, Any] = {}

    def cached(value: Any) -> Any:
        key = (type(value), value)
        try:
            found = seen.get(key, _MISSING)
        except TypeError:  # not hashable: an unusual shape
            raise _Fallback from None
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


def _status(value: Any) -> str:
    if type(value) is not str:
        raise ValueProblem("status")
    return mapping.canonical_status(value)


def _archived(value: Any) -> bool:
    return bool(to_bool(value, field="archived"))


_read_status = _cached(_status)
_read_date = _cached(lambda v: parse_dmy(v, field="date"))
_read_currency = _cached(mapping.currency_code)
_read_type = _cached(mapping.snake_case)
_read_archived = _cached(_archived)


def _optional_money(value: Any) -> Any:
    """A money value the columns take as it is: an exact `Decimal` or an integer (Arrow checks
    that it fits), None, or a plain number as text (`"12.30"`, read exactly; `""` is None);
    anything else (other text, a float, a boolean) is the record mapper's to judge."""
    kind = type(value)
    if kind is Decimal:
        # Arrow reads an amount below its scale as 0 when the exponent is extreme (1E-600000),
        # instead of refusing it: the record mapper's to refuse.
        if value and value.adjusted() < -MONEY_SCALE:
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
    """A required amount (`total`, `before_taxes`, `taxes`): missing is the record mapper's to refuse."""
    found = _optional_money(value)
    if found is None:
        raise _Fallback
    return found


def _text(value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        return value
    if value is None:
        return None
    if kind is int:
        return str(value)
    raise _Fallback


# The columns `_columns` reads, in its order.
_INVOICE_COLUMNS = (
    "invoice_id",
    "client_id",
    "client_name",
    "number",
    "document_type",
    "status",
    "provider_status",
    "is_archived",
    "issue_date",
    "due_date",
    "currency",
    "subtotal",
    "discount_total",
    "tax_total",
    "total",
    "reference",
    "notes",
    "raw",
)
_LINE_COLUMNS = (
    "invoice_id",
    "line_number",
    "name",
    "description",
    "quantity",
    "unit",
    "unit_price",
    "discount_amount",
    "tax_rate",
    "tax_amount",
    "subtotal",
    "total",
    "raw",
)


def map_invoice_page(records: Sequence[Any], context: Context) -> PageRows | None:
    """One page of `POST /clients/{id}/invoices.json` documents into canonical Arrow rows."""
    rows: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    fallback: list[int] = []
    for position, record in enumerate(records):
        try:
            row, its_lines = _columns(record)
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


def _tables(account: str, inv: dict[str, list[Any]], line: dict[str, list[Any]], fallback: list[int]) -> PageRows:
    n, m = len(inv["invoice_id"]), len(line["invoice_id"])
    total = pa.array(inv["total"], _DEC)
    subtotal = pa.array(inv["subtotal"], _DEC)
    taxes = pa.array(inv["tax_total"], _DEC)
    difference = pc.subtract_checked(pc.add_checked(subtotal, taxes), total)
    withholding = pc.if_else(pc.greater(difference, pa.scalar(Decimal(0), difference.type)), difference, _ZERO)
    status = pa.array(inv["status"], pa.string())
    balance = pc.if_else(
        pc.equal(status, "draft"), pa.scalar(None, _DEC), pc.if_else(pc.equal(status, "open"), total, _ZERO)
    )
    invoices = arrow_table(
        INVOICES,
        {
            **inv,
            "provider": pa.repeat(PROVIDER, n) if n else pa.array([], pa.string()),
            "account": pa.repeat(account, n) if n else pa.array([], pa.string()),
            "status": status,
            "subtotal": subtotal,
            "tax_total": taxes,
            "total": total,
            "discount_total": pc.fill_null(pa.array(inv["discount_total"], _DEC), _ZERO),
            "withholding_total": withholding.cast(_DEC),
            "shipping_total": pa.repeat(_ZERO, n) if n else pa.array([], _DEC),
            "balance_due": balance,
        },
        n,
    )
    items = arrow_table(
        INVOICE_ITEMS,
        {
            **line,
            "provider": pa.repeat(PROVIDER, m) if m else pa.array([], pa.string()),
            "account": pa.repeat(account, m) if m else pa.array([], pa.string()),
            "discount_amount": pc.fill_null(pa.array(line["discount_amount"], _DEC), _ZERO),
        },
        m,
    )
    return PageRows(invoices, items, fallback)


def _columns(record: Any) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One document's invoice values (in `map_invoice_page`'s column order) and its lines';
    `_Fallback` for anything the columns would not take exactly as `map_invoice` does."""
    if type(record) is not dict:
        raise _Fallback
    get = record.get
    invoice_id = _text(get("id"))
    if not invoice_id:
        raise _Fallback
    raw_status = get("status")
    status = _read_status(raw_status)
    client = get("client")
    if client is None:
        client_id = client_name = None
    elif type(client) is dict:
        client_id, client_name = _text(client.get("id")), _text(client.get("name"))
    else:
        raise _Fallback
    number = _text(get("sequence_number"))
    if number is not None and number.strip().lower() in mapping.DRAFT_NUMBERS:
        number = None
    total, before_taxes, taxes = _money(get("total")), _money(get("before_taxes")), _money(get("taxes"))
    archived = get("archived")
    archived = archived if type(archived) is bool else _read_archived(archived)
    date, due = get("date"), get("due_date")
    row = (
        invoice_id,
        client_id,
        client_name,
        number,
        _read_type(get("type")),
        status,
        raw_status,
        archived,
        None if date is None or date == "" else _read_date(date),
        None if due is None or due == "" else _read_date(due),
        _read_currency(get("currency")),
        before_taxes,
        _optional_money(get("discount")),
        taxes,
        total,
        _text(get("reference")),
        _text(get("observations")),
    )
    items = get("items")
    lines: list[tuple[Any, ...]] = []
    if items:
        if type(items) is not list:
            raise _Fallback
        for number_, item in enumerate(items, 1):
            if type(item) is not dict:
                raise _Fallback
            it = item.get
            tax = it("tax")
            rate = tax.get("value") if type(tax) is dict else None
            lines.append(
                (
                    invoice_id,
                    number_,
                    _text(it("name")),
                    _text(it("description")),
                    _optional_money(it("quantity")),
                    _text(it("unit")),
                    _optional_money(it("unit_price")),
                    _optional_money(it("discount_amount")),
                    _optional_money(rate),
                    _optional_money(it("tax_amount")),
                    _optional_money(it("subtotal")),
                    _optional_money(it("total")),
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
