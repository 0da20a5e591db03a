"""InvoiceXpress documents, a page at a time, into Arrow rows: the vectorised twin of
`mapping.map_invoice`, which stays the reference (a test compares both, row for row).

Each page is read into columns in one pass; the values that repeat across a page (dates,
currency names, document types, statuses) are read once per distinct value with the record
mapper's own functions, and the money columns are built straight into DECIMAL(18, 6) Arrow
arrays from the decoded `Decimal`s (sources/shared/pages.py), never rounded. The derived columns
(withholding, balance due) are computed over the columns. A record of any shape the columns do
not take exactly (money sent as text other than a plain number or past DECIMAL(18, 6), a status
or a currency the record mapper would reject, a value that is not an object where one is
expected) is left to the record mapper (`PageRows.fallback`); so is a whole page Arrow refuses
(a derived amount past DECIMAL(18, 6)).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sources.invoicexpress import mapping
from sources.invoicexpress.settings import NAME as PROVIDER
from sources.shared.declaration import Context, PageRows
from sources.shared.pages import (
    DEC,
    Fallback,
    cached,
    constant,
    encode,
    map_page,
    money,
    only_text,
    optional_money,
    page_rows,
    raw_with_lines,
    text,
)
from sources.shared.values import parse_dmy, to_bool

_ZERO = pa.scalar(Decimal(0), DEC)


def _archived(value: Any) -> bool:
    return bool(to_bool(value, field="archived"))


_read_status = cached(only_text(mapping.canonical_status))
_read_date = cached(lambda v: parse_dmy(v, field="date"))
_read_currency = cached(mapping.currency_code)
_read_type = cached(mapping.snake_case)
_read_archived = cached(_archived)


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
    return map_page(
        records,
        _columns,
        (_INVOICE_COLUMNS, _LINE_COLUMNS),
        lambda inv, line, fallback: _tables(context.account, inv, line, fallback),
    )


def _tables(account: str, inv: dict[str, list[Any]], line: dict[str, list[Any]], fallback: list[int]) -> PageRows:
    n = len(inv["invoice_id"])
    total = pa.array(inv["total"], DEC)
    subtotal = pa.array(inv["subtotal"], DEC)
    taxes = pa.array(inv["tax_total"], DEC)
    difference = pc.subtract_checked(pc.add_checked(subtotal, taxes), total)
    withholding = pc.if_else(pc.greater(difference, pa.scalar(Decimal(0), difference.type)), difference, _ZERO)
    status = pa.array(inv["status"], pa.string())
    balance = pc.if_else(
        pc.equal(status, "draft"), pa.scalar(None, DEC), pc.if_else(pc.equal(status, "open"), total, _ZERO)
    )
    invoices = {
        **inv,
        "status": status,
        "subtotal": subtotal,
        "tax_total": taxes,
        "total": total,
        "discount_total": pc.fill_null(pa.array(inv["discount_total"], DEC), _ZERO),
        "withholding_total": withholding.cast(DEC),
        "shipping_total": constant(Decimal(0), n, DEC),
        "balance_due": balance,
    }
    items = {
        **line,
        "discount_amount": pc.fill_null(pa.array(line["discount_amount"], DEC), _ZERO),
    }
    return page_rows(PROVIDER, account, invoices, items, fallback)


def _columns(record: Any) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One document's invoice values (in `map_invoice_page`'s column order) and its lines';
    `Fallback` for anything the columns would not take exactly as `map_invoice` does."""
    if type(record) is not dict:
        raise Fallback
    get = record.get
    invoice_id = text(get("id"))
    if not invoice_id:
        raise Fallback
    raw_status = get("status")
    status = _read_status(raw_status)
    client = get("client")
    if client is None:
        client_id = client_name = None
    elif type(client) is dict:
        client_id, client_name = text(client.get("id")), text(client.get("name"))
    else:
        raise Fallback
    number = text(get("sequence_number"))
    if number is not None and number.strip().lower() in mapping.DRAFT_NUMBERS:
        number = None
    total, before_taxes, taxes = money(get("total")), money(get("before_taxes")), money(get("taxes"))
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
        optional_money(get("discount")),
        taxes,
        total,
        text(get("reference")),
        text(get("observations")),
    )
    items = get("items")
    lines: list[tuple[Any, ...]] = []
    if items:
        if type(items) is not list:
            raise Fallback
        for number_, item in enumerate(items, 1):
            if type(item) is not dict:
                raise Fallback
            it = item.get
            tax = it("tax")
            rate = tax.get("value") if type(tax) is dict else None
            lines.append(
                (
                    invoice_id,
                    number_,
                    text(it("name")),
                    text(it("description")),
                    optional_money(it("quantity")),
                    text(it("unit")),
                    optional_money(it("unit_price")),
                    optional_money(it("discount_amount")),
                    optional_money(rate),
                    optional_money(it("tax_amount")),
                    optional_money(it("subtotal")),
                    optional_money(it("total")),
                    encode(item),
                )
            )
    return (*row, raw_with_lines(record, "items", lines)), lines
