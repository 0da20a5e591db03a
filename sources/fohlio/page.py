"""Fohlio client invoices, a page at a time, into Arrow rows: the vectorised twin of
`mapping.map_invoice` (with `mapping.resolve_currency`), which stays the reference (a test
compares both, row for row).

Each page is read into columns in one pass; the values that repeat across a page (dates,
timestamps, statuses, currencies) are read once per distinct value with the record mapper's own
functions, keyed by type as well as value, and the invoice amounts are built straight into
DECIMAL(18, 6) Arrow arrays from the decoded `Decimal`s (sources/shared/pages.py), never rounded.
The currency is resolved with `mapping.resolve_currency`
itself, against the page's project currencies and the configured fallback, once per distinct
(project id, client currency) pair of the page. A record of any shape the columns do not take
exactly (money as text other than a plain number or past DECIMAL(18, 6), an undocumented status, a currency that cannot
be resolved, an id or a label that is not text or an integer, a value that is not an object or a
list where one is expected, a line whose quantity × price does not fit) is left to the record
mapper (`PageRows.fallback`); so is a whole page Arrow refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa

from sources.fohlio import mapping
from sources.fohlio.settings import NAME as PROVIDER
from sources.shared.declaration import Context, PageRows
from sources.shared.pages import (
    DEC,
    MISSING,
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
from sources.shared.values import ValueProblem, parse_date, parse_timestamp, to_decimal


def _text_or_none(read: Callable[[str], Any]) -> Callable[[Any], Any]:
    """`read` for text, None for None; any other type is the record mapper's to judge."""
    text_only = only_text(read)
    return lambda value: None if value is None else text_only(value)


_read_date = cached(_text_or_none(lambda v: parse_date(v, field="date")))
_read_timestamp = cached(_text_or_none(lambda v: parse_timestamp(v, field="timestamp")))


def _exact_money(value: Any) -> Decimal | None:
    """`to_decimal` itself, for the amounts a product is computed from."""
    try:
        return to_decimal(value)
    except ValueProblem:
        raise Fallback from None


def _due_date(terms: Any) -> Any:
    """`mapping.due_date` for a list of term objects (or none); other shapes fall back."""
    if terms is None:
        return None
    if type(terms) is not list:
        raise Fallback
    earliest = None
    for term in terms:
        if type(term) is not dict:
            raise Fallback
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
        self.projects: Any = MISSING
        self.fallback = context.options.get("currency")
        self.seen: dict[Any, Any] = {}

    def __call__(self, record: dict[str, Any]) -> str:
        if self.projects is MISSING:
            self.projects = self.context.lookup("projects")
        project_id, client = record.get("project_id"), record.get("client")
        data = client.get("data") if isinstance(client, Mapping) else None
        currency = data.get("currency", MISSING) if isinstance(data, Mapping) else MISSING
        if type(project_id) not in (str, int, type(None)) or type(currency) not in (str, type(None), object):
            return self._resolve(record)  # an unusual shape: read as it is, not remembered
        key = (type(project_id), project_id, type(currency), currency)
        found = self.seen.get(key, MISSING)
        if found is MISSING:
            try:
                found = mapping.resolve_currency(record, self.projects, self.fallback)
            except ValueProblem as problem:
                found = problem
            self.seen[key] = found
        if isinstance(found, ValueProblem):
            raise Fallback
        return str(found)

    def _resolve(self, record: dict[str, Any]) -> str:
        try:
            return mapping.resolve_currency(record, self.projects, self.fallback)
        except ValueProblem:
            raise Fallback from None


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
    return map_page(
        records,
        lambda record: _columns(record, currencies),
        (_INVOICE_COLUMNS, _LINE_COLUMNS),
        lambda inv, line, fallback: _tables(context.account, inv, line, fallback),
    )


def _tables(account: str, inv: dict[str, list[Any]], line: dict[str, list[Any]], fallback: list[int]) -> PageRows:
    n, m = len(inv["invoice_id"]), len(line["invoice_id"])
    zero = Decimal(0)
    invoices = {
        **inv,
        "document_type": constant("invoice", n, pa.string()),
        "is_archived": constant(False, n, pa.bool_()),
        "subtotal": pa.array(inv["subtotal"], DEC),
        "tax_total": pa.array(inv["tax_total"], DEC),
        "total": pa.array(inv["total"], DEC),
        "balance_due": pa.array(inv["balance_due"], DEC),
        "discount_total": constant(zero, n, DEC),
        "withholding_total": constant(zero, n, DEC),
        "shipping_total": constant(zero, n, DEC),
    }
    items = {
        **line,
        "discount_amount": constant(zero, m, DEC),
    }
    return page_rows(PROVIDER, account, invoices, items, fallback)


def _columns(record: Any, currency: _Currencies) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One invoice's values (in `_INVOICE_COLUMNS` order) and its lines'; `Fallback` for
    anything the columns would not take exactly as `map_invoice` does."""
    if type(record) is not dict:
        raise Fallback
    get = record.get
    invoice_id = text(get("id"))
    if not invoice_id:
        raise Fallback
    provider_status = get("status")
    if type(provider_status) is not str:
        raise Fallback
    status = mapping.STATUS_MAP.get(provider_status)
    if status is None:
        raise Fallback
    client = get("client")
    if client is None:
        client_id = client_name = None
    elif type(client) is dict:
        client_id, client_name = text(client.get("id")), text(client.get("name"))
    else:
        raise Fallback
    row = (
        invoice_id,
        client_id,
        client_name,
        text(get("label")) or None,
        status,
        provider_status,
        _read_date(get("invoice_date")),
        _due_date(get("payment_terms")),
        currency(record),
        money(get("amount")),
        money(get("tax_amount")),
        money(get("amount_with_tax")),
        optional_money(get("balance")),
        _read_timestamp(get("created_at")),
        _read_timestamp(get("updated_at")),
        text(get("note")),
    )
    items = get("items")
    lines: list[tuple[Any, ...]] = []
    if items is not None:
        if type(items) is not list:
            raise Fallback
        for number, item in enumerate(items, 1):
            if type(item) is not dict:
                raise Fallback
            it = item.get
            quantity, price = _exact_money(it("quantity")), _exact_money(it("price"))
            subtotal = _exact_money(quantity * price) if quantity is not None and price is not None else None
            lines.append(
                (
                    invoice_id,
                    number,
                    text(it("id")),
                    text(it("name")),
                    text(it("description")),
                    quantity,
                    text(it("unit_type")),
                    price,
                    subtotal,
                    encode(item),
                )
            )
    return (*row, raw_with_lines(record, "items", lines)), lines
