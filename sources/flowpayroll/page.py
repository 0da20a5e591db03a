"""Flow Payroll invoices, a page at a time, into Arrow rows: the vectorised twin of
`mapping.map_invoice`, which stays the reference (a test compares both, row for row).

Each page is read into columns in one pass. The values that repeat across a page (dates,
currency codes, `externalProviderStatus` words) are read once per distinct value, keyed by the
page's announced formats and by the value's type, with the record mapper's own functions; the
money columns are built straight into DECIMAL(18, 6) Arrow arrays from the decoded `Decimal`s
(sources/shared/pages.py), never rounded, and the line totals (`lineAmount ± taxAmount`) are
computed over the columns. A record of any shape the columns do not take exactly (money as text
other than a plain number, an amount past DECIMAL(18, 6), a value of an unexpected
type, a currency, date or timestamp the record mapper would refuse, an invoice whose status
cannot be derived, a client name that is not text) is left to the record mapper
(`PageRows.fallback`); so is a whole page Arrow refuses (a line total past DECIMAL(18, 6)), or
one without announced formats.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sources.flowpayroll import mapping
from sources.flowpayroll.settings import NAME as PROVIDER
from sources.shared.currency import iso_4217
from sources.shared.declaration import Context, PageRows
from sources.shared.pages import DEC, Fallback, cached, constant, map_page, money, optional_money, page_rows, text
from sources.shared.values import ValueProblem, dumps

_ZERO = Decimal(0)


def _word(value: str) -> str | None:
    """What `externalProviderStatus` says, as `mapping.derive_status` reads it: `void`, `draft` or
    None (the amounts decide)."""
    word = (value or "").strip().lower()
    if word in mapping.VOID_WORDS:
        return "void"
    if word in mapping.DRAFT_WORDS:
        return "draft"
    return None


def _date(key: tuple[mapping.Formats, str]) -> dt.date | None:
    formats, value = key
    return mapping.parse_date(value, formats)


# Keyed by the value's type as well: `True`, `1` and `Decimal("1.0")` are each read as themselves.
_read_word = cached(_word)
_read_date = cached(_date)
_read_currency = cached(lambda value: iso_4217(value, field="currencyCode"))


def _blank_to_none(value: Any) -> str | None:
    found = text(value)
    return found if found else None


def _timestamp(value: Any, formats: mapping.Formats) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise Fallback
    try:
        return mapping.parse_timestamp(value, formats)
    except ValueProblem:
        raise Fallback from None


def _day(value: Any, formats: mapping.Formats) -> dt.date | None:
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise Fallback
    found: dt.date | None = _read_date((formats, value))
    return found


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
    "reference",
    "raw",
)
_LINE_COLUMNS = (
    "invoice_id",
    "line_number",
    "item_id",
    "description",
    "quantity",
    "unit_price",
    "tax_amount",
    "line_amount",
    "inclusive",
    "raw",
)


def map_invoice_page(records: Sequence[Any], context: Context) -> PageRows | None:
    """One page of `GET /clients/{clientId}/invoices` invoices into canonical Arrow rows."""
    formats = context.page
    if type(formats) is not mapping.Formats:
        return None  # formats the record mapper reads its own way: the whole page goes record by record
    names = context.client_names
    return map_page(
        records,
        lambda record: _columns(record, formats, names),
        (_INVOICE_COLUMNS, _LINE_COLUMNS),
        lambda inv, line, fallback: _tables(context.account, inv, line, fallback),
    )


def _tables(account: str, inv: dict[str, list[Any]], line: dict[str, list[Any]], fallback: list[int]) -> PageRows:
    n, m = len(inv["invoice_id"]), len(line["invoice_id"])
    invoices = {
        **inv,
        # docs/canonical-model.md: Flow Payroll has one document type.
        "document_type": constant("invoice", n, pa.string()),
        "is_archived": constant(False, n, pa.bool_()),
        "subtotal": pa.array(inv["subtotal"], DEC),
        "tax_total": pa.array(inv["tax_total"], DEC),
        "total": pa.array(inv["total"], DEC),
        "balance_due": pa.array(inv["balance_due"], DEC),
        "discount_total": constant(_ZERO, n, DEC),
        "withholding_total": constant(_ZERO, n, DEC),
        "shipping_total": constant(_ZERO, n, DEC),
    }
    # mapping.map_line: total = lineAmount + taxAmount, subtotal = lineAmount; with `Inclusive` the
    # line amount holds its tax: subtotal = lineAmount - taxAmount, total = lineAmount. Without
    # both amounts, subtotal = lineAmount and total is NULL.
    amount = pa.array(line["line_amount"], DEC)
    tax = pa.array(line["tax_amount"], DEC)
    inclusive = pa.array(line["inclusive"], pa.bool_())
    both = pc.and_(pc.is_valid(amount), pc.is_valid(tax))
    exclusive_total = pc.add_checked(amount, tax).cast(DEC)
    inclusive_subtotal = pc.subtract_checked(amount, tax).cast(DEC)
    total = pc.if_else(inclusive, pc.if_else(both, amount, pa.scalar(None, DEC)), exclusive_total)
    subtotal = pc.if_else(pc.and_(inclusive, both), inclusive_subtotal, amount)
    items = {
        "invoice_id": line["invoice_id"],
        "line_number": line["line_number"],
        "item_id": line["item_id"],
        "description": line["description"],
        "quantity": pa.array(line["quantity"], DEC),
        "unit_price": pa.array(line["unit_price"], DEC),
        "discount_amount": constant(_ZERO, m, DEC),
        "tax_amount": tax,
        "subtotal": subtotal,
        "total": total,
        "raw": line["raw"],
    }
    return page_rows(PROVIDER, account, invoices, items, fallback)


def _status(word: str | None, total: Any, balance: Any) -> str:
    """`mapping.derive_status` on values already read; `Fallback` where it would refuse."""
    if word is not None:
        return word
    if balance is None:
        raise Fallback
    if balance <= _ZERO:
        return "paid"
    if balance >= total:
        return "open"
    return "partially_paid"


def _columns(
    record: Any, formats: mapping.Formats, client_names: Mapping[str, str | None]
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One invoice's values (in `_INVOICE_COLUMNS` order) and its lines' (`_LINE_COLUMNS`);
    `Fallback` for anything the columns would not take exactly as `map_invoice` does."""
    if type(record) is not dict:
        raise Fallback
    get = record.get
    invoice_id = _blank_to_none(get("id"))
    if invoice_id is None:
        raise Fallback
    total, subtotal, taxes = money(get("amount")), money(get("subTotal")), money(get("totalTax"))
    balance = optional_money(get("balanceDue"))
    provider_status = get("externalProviderStatus")
    if provider_status is not None and type(provider_status) is not str:
        raise Fallback
    status = _status(_read_word(provider_status or ""), total, balance)
    raw_client = text(get("clientId"))
    client_name = client_names.get(raw_client or "")
    if client_name is not None and type(client_name) is not str:
        raise Fallback
    currency = get("currencyCode")
    inclusive_word = get("lineAmountTypes")
    if inclusive_word is not None and type(inclusive_word) is not str:
        raise Fallback
    inclusive = (inclusive_word or "").strip().lower() == "inclusive"
    row = (
        invoice_id,
        raw_client or None,
        client_name,
        _blank_to_none(get("invoiceNumber")),
        status,
        provider_status or None,
        _day(get("date"), formats),
        _day(get("dueDate"), formats),
        _read_currency(currency),
        subtotal,
        taxes,
        total,
        balance,
        _timestamp(get("createdDate"), formats),
        _timestamp(get("updatedDate"), formats),
        _blank_to_none(get("reference")),
        dumps(record),
    )
    items = get("lineItems")
    lines: list[tuple[Any, ...]] = []
    if items:
        if type(items) is not list:
            raise Fallback
        for number, item in enumerate(items, 1):
            if type(item) is not dict:
                raise Fallback
            it = item.get
            lines.append(
                (
                    invoice_id,
                    number,
                    _blank_to_none(it("id")),
                    text(it("description")),
                    optional_money(it("quantity")),
                    optional_money(it("unitAmount")),
                    optional_money(it("taxAmount")),
                    optional_money(it("lineAmount")),
                    inclusive,
                    dumps(item),
                )
            )
    return row, lines
