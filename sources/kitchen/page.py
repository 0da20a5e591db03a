"""Kitchen invoices, a page at a time, into Arrow rows: the vectorised twin of
`mapping.map_invoice`, which stays the reference (a test compares both, row for row).

Each page is read into columns in one pass. The values that repeat across a page (status,
currency, document type) are read once per distinct value, keyed by type and value, with the
record mapper's own functions; timestamps in Kitchen's own format (`2024-03-13T09:16:53+00:00`)
are read with the standard library, any other text with the record mapper's parser. Each amount
is checked to fit DECIMAL(18, 6) exactly with `values.fit_money`, the record mapper's own rule
(Arrow alone is not enough: it reads `1E-600000` as 0), then built straight into DECIMAL(18, 6)
Arrow arrays from the decoded `Decimal`s; a derived value Arrow refuses sends the whole page record by record. Never a
float, never rounded. `subtotal` and `balance_due` are computed over the columns.

Left to the record mapper (`PageRows.fallback`): a record that is not an object; an id that is
not non-empty text; a status or currency the record mapper refuses; money sent as anything
but an exact number that fits or plain numeric text; a missing or null `total_amount` or
`shipping_amount`; a missing or null `tax_amount` or `discount_amount` unless `tax_items` or
`discounts` is an empty list; `items` that is neither a list nor null; an item that is not an
object, lacks its quantity or amount, or whose product does not fit; a text field sent as
another type than text or integer; a date or timestamp the record mapper's parser refuses or
that leaves the datetime range in UTC.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sources.kitchen import mapping
from sources.kitchen.settings import NAME as PROVIDER
from sources.shared.declaration import Context, PageRows
from sources.shared.pages import (
    DEC,
    Fallback,
    cached,
    constant,
    map_page,
    money,
    only_text,
    optional_money,
    page_rows,
    text,
)
from sources.shared.values import ValueProblem, dumps, fit_money, parse_date, parse_timestamp

_ZERO = Decimal(0)
# Kitchen's timestamp format, read with `datetime.fromisoformat` exactly as pendulum reads it;
# fractions of 3 or 6 digits, offsets within ±23:59, no leap second, no hour 24.
_STAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{3}|\.\d{6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?"
)
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


_read_status = cached(only_text(mapping.canonical_status))
_read_currency = cached(only_text(mapping._currency))
_read_type = cached(lambda value: mapping._document_type(value) if value is None or type(value) is str else _bad())
_slow_timestamp = cached(only_text(lambda v: parse_timestamp(v, field="timestamp")))
_slow_date = cached(only_text(lambda v: parse_date(v, field="date")))


def _bad() -> Any:
    raise ValueProblem("unusual type")


def _timestamp(value: Any) -> dt.datetime | None:
    """`values.parse_timestamp`: Kitchen's own format read directly, anything else by the reference."""
    if value is None or value == "":
        return None
    if type(value) is str and _STAMP.fullmatch(value):
        try:
            parsed = dt.datetime.fromisoformat(value)
            return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
        except (ValueError, OverflowError):  # out of range in UTC, say: the record mapper's to read
            return _slow_timestamp(value)
    return _slow_timestamp(value)


def _date(value: Any) -> dt.date | None:
    """`values.parse_date`: the calendar day written in the timestamp's own offset."""
    if value is None or value == "":
        return None
    if type(value) is str:
        try:
            if _STAMP.fullmatch(value):
                return dt.datetime.fromisoformat(value).date()
            if _DAY.fullmatch(value):
                return dt.date.fromisoformat(value)
        except ValueError:
            pass
    return _slow_date(value)


def _or_empty_list(value: Any, parts: Any) -> Decimal:
    """An amount that is 0 when missing only if its list of parts is empty (`mapping._amount_or_empty_list`)."""
    found = optional_money(value)
    if found is not None:
        return found
    if type(parts) is not list or parts:
        raise Fallback
    return _ZERO


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
    "discount_total",
    "tax_total",
    "shipping_total",
    "total",
    "created_at",
    "updated_at",
    "paid_at",
    "voided_at",
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
    "unit_price",
    "subtotal",
    "raw",
)


def map_invoice_page(records: Sequence[Any], context: Context) -> PageRows | None:
    """One page of `GET /api/invoices` records into canonical Arrow rows."""
    names = context.client_names
    return map_page(
        records,
        lambda record: _columns(record, names),
        (_INVOICE_COLUMNS, _LINE_COLUMNS),
        lambda inv, line, fallback: _tables(context.account, inv, line, fallback),
    )


def _tables(account: str, inv: dict[str, list[Any]], line: dict[str, list[Any]], fallback: list[int]) -> PageRows:
    n, m = len(inv["invoice_id"]), len(line["invoice_id"])
    total = pa.array(inv["total"], DEC)
    taxes = pa.array(inv["tax_total"], DEC)
    shipping = pa.array(inv["shipping_total"], DEC)
    # total − tax − shipping, checked: a result past DECIMAL(18, 6) is refused by the cast.
    subtotal = pc.subtract_checked(pc.subtract_checked(total, taxes), shipping).cast(DEC)
    status = pa.array(inv["status"], pa.string())
    owed = pc.is_in(status, pa.array(["open", "uncollectible"]))
    settled = pc.is_in(status, pa.array(["paid", "void"]))
    balance = pc.if_else(owed, total, pc.if_else(settled, pa.scalar(_ZERO, DEC), pa.scalar(None, DEC)))
    invoices = {
        **inv,
        "status": status,
        "subtotal": subtotal,
        "tax_total": taxes,
        "shipping_total": shipping,
        "total": total,
        "withholding_total": constant(_ZERO, n, DEC),
        "balance_due": balance,
    }
    items = {
        **line,
        "discount_amount": constant(_ZERO, m, DEC),
    }
    return page_rows(PROVIDER, account, invoices, items, fallback)


def _columns(record: Any, names: Any) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One invoice's values (in `_INVOICE_COLUMNS` order) and its lines'; `Fallback` for
    anything the columns would not take exactly as `map_invoice` does."""
    if type(record) is not dict:
        raise Fallback
    get = record.get
    invoice_id = get("id")
    if type(invoice_id) is not str or not invoice_id:
        raise Fallback
    raw_status = get("status")
    status = _read_status(raw_status)
    total, shipping = money(get("total_amount")), money(get("shipping_amount"))
    tax = _or_empty_list(get("tax_amount"), get("tax_items"))
    discount = _or_empty_list(get("discount_amount"), get("discounts"))
    client_id = text(get("client"))
    if client_id is None:
        client_name = None
    else:
        client_name = names.get(client_id)
        if client_name is not None and type(client_name) is not str:
            raise Fallback
    items = get("items")
    if items is None:
        items = []
    elif type(items) is not list:
        raise Fallback
    row = (
        invoice_id,
        client_id,
        client_name,
        text(get("number")),
        _read_type(get("type")),
        status,
        raw_status,
        get("archived_at") is not None,
        _date(get("issue_date")),
        _date(get("due_date")),
        _read_currency(get("currency")),
        discount,
        tax,
        shipping,
        total,
        _timestamp(get("created_at")),
        _timestamp(get("updated_at")),
        _timestamp(get("paid_at")),
        _timestamp(get("voided_at")),
        text(get("memo")),
        dumps(record),
    )
    lines: list[tuple[Any, ...]] = []
    for number, item in enumerate(items, 1):
        if type(item) is not dict:
            raise Fallback
        it = item.get
        quantity, unit_price = optional_money(it("quantity")), optional_money(it("amount"))
        if quantity is None or unit_price is None:
            raise Fallback
        subtotal = quantity * unit_price  # as the record mapper multiplies
        if fit_money(subtotal) is None:
            raise Fallback
        lines.append(
            (
                invoice_id,
                number,
                text(it("id")),
                text(it("title")),
                text(it("description")),
                quantity,
                unit_price,
                subtotal,
                dumps(item),
            )
        )
    return row, lines
