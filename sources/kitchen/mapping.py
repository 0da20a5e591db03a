"""Kitchen records → canonical rows. Pure functions: no I/O, no config, inputs never mutated.

Every quirk handled here names where it is documented (`docs/providers.md` §3, `docs/canonical-model.md`).
A record that cannot be mapped without guessing raises `ValueProblem`; the source counts it as
skipped and carries on.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sources.shared.currency import iso_4217
from sources.shared.model import MappedInvoice
from sources.shared.structure import Reads
from sources.shared.values import (
    ValueProblem,
    parse_date,
    parse_timestamp,
    to_decimal,
    to_text,
)

PROVIDER = "kitchen"
# docs/providers.md §3.4 [DOC]: an invoice lists its lines in `items`.
LINES = "items"

# docs/canonical-model.md, status table: Kitchen's words are the canonical words.
# docs/providers.md §3.4 [DOC legacy]: the enum is draft, open, paid, void, uncollectible.
STATUSES = {
    "draft": "draft",
    "open": "open",
    "paid": "paid",
    "void": "void",
    "uncollectible": "uncollectible",
}

_ZERO = Decimal("0")
_SNAKE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|[\s\-]+")


def client_names(clients: list[Mapping[str, Any]]) -> dict[str, str | None]:
    """The id → name map used to fill `client_name` on invoices.

    Args:
        clients: Kitchen client (user) objects as listed by `GET /api/clients`.
    """
    names: dict[str, str | None] = {}
    for client in clients:
        client_id = to_text(client.get("id"))
        if client_id is not None:
            names[client_id] = to_text(client.get("name"))
    return names


def map_client(client: Mapping[str, Any], account: str) -> dict[str, Any]:
    """Map one Kitchen client (a user of group `client`) to a canonical `clients` row.

    Raises:
        ValueProblem: the client has no id or an unreadable timestamp.
    """
    client_id = to_text(client.get("id"))
    if not client_id:
        raise ValueProblem("client without an id")
    return {
        "provider": PROVIDER,
        "account": account,
        "client_id": client_id,
        "name": to_text(client.get("name")),
        "email": to_text(client.get("email")),
        # docs/providers.md §3.2 [DOC]: the client object has no country and no tax id.
        "country": None,
        "tax_id": None,
        "created_at": parse_timestamp(client.get("created_at"), field="created_at"),
        "updated_at": parse_timestamp(client.get("updated_at"), field="updated_at"),
    }


def invoice_updated_at(invoice: Mapping[str, Any]) -> dt.datetime | None:
    """The invoice's `updated_at`, the incremental cursor (docs/providers.md §3.3 [INF])."""
    return parse_timestamp(invoice.get("updated_at"), field="updated_at")


def canonical_status(status: Any) -> str:
    """Kitchen's status word → the canonical word.

    Raises:
        ValueProblem: a word outside the documented enum; it is reported, never guessed.
    """
    word = to_text(status)
    canonical = STATUSES.get((word or "").strip().lower())
    if canonical is None:
        raise ValueProblem(f"status: unknown Kitchen status {status!r}")
    return canonical


def balance_due(status: str, total: Decimal) -> Decimal | None:
    """docs/canonical-model.md, Kitchen column: the total when open or uncollectible, 0 when paid or
    void, NULL for drafts (nothing is owed yet)."""
    if status in ("open", "uncollectible"):
        return total
    if status in ("paid", "void"):
        return _ZERO
    return None


def _currency(value: Any) -> str:
    # docs/providers.md §3.4 [DOC]: `currency` is an ISO 4217 code; checked against the ISO list
    # (docs/canonical-model.md: not merely three letters), upper-cased in case it comes lower.
    return iso_4217(value, field="currency")


def error_message(body: Any) -> str | None:
    """The API's own words in an error body, or None when the body carries none.

    docs/providers.md §3.5 [3P kitchen-mcp]: Laravel errors `{"message": "...", "errors": {field:
    ["..."]}}`; a 200 whose body is `{"error": "..."}` or `{"message": "..."}` instead of a page
    of records is read the same way. A page (`{"data": [...], ...}`) has no message: None.
    """
    if not isinstance(body, Mapping):
        return None
    found: list[str] = []
    for key in ("error", "message"):
        value = body.get(key)
        if isinstance(value, Mapping):
            value = value.get("message") or value.get("error")
        if isinstance(value, str) and value.strip():
            found.append(value.strip())
    errors = body.get("errors")
    if isinstance(errors, Mapping):
        for field, messages in errors.items():
            listed = messages if isinstance(messages, list) else [messages]
            found += [f"{field}: {m}" for m in listed if m not in (None, "")]
    elif isinstance(errors, list):
        found += [str(e) for e in errors if isinstance(e, str) and e.strip()]
    return "; ".join(dict.fromkeys(found)) or None


def _document_type(value: Any) -> str:
    # docs/canonical-model.md: `type` in snake_case; docs/providers.md §3.4 [DOC]: always "invoice" today.
    text = (to_text(value) or "").strip()
    return _SNAKE.sub("_", text).lower() if text else "invoice"


def _shipping(invoice: Mapping[str, Any], discount: Decimal, tax: Decimal, total: Decimal, why: str) -> Decimal:
    """`shipping_amount`; when the key is absent, 0 only if the invoice's own figures prove it.

    docs/canonical-model.md (Kitchen's absent `shipping_amount`) and docs/providers.md §3.6: Kitchen
    writes no `shipping_amount` on documents without shipping (the "archive invoice" example), so an
    absent key is 0 exactly when `amount − discount_amount + tax_amount = total_amount`. `discount` and
    `tax` are the figures the invoice's own rules gave (`_amount_or_empty_list`): the documented amount,
    or 0 for an empty list. An explicit `null` is not absence: no published example writes one, and a
    null amount is never read as 0 (docs/canonical-model.md), so it stays unmapped.
    """
    if "shipping_amount" in invoice:
        value = to_decimal(invoice["shipping_amount"], field="shipping_amount")
        if value is None:
            raise ValueProblem(f"shipping_amount: null or empty; only an absent one is proven 0 by the figures{why}")
        return value
    # docs/providers.md §3.6 [DOC "Archive an invoice" example]: no `shipping_amount` key without shipping.
    amount = to_decimal(invoice.get("amount"), field="amount")
    if amount is None:
        raise ValueProblem(f"shipping_amount: missing, and amount is missing or null, so 0 cannot be proven{why}")
    if amount - discount + tax != total:
        raise ValueProblem(
            f"shipping_amount: missing, and amount − discount_amount + tax_amount = {amount - discount + tax},"
            f" not total_amount {total}, so 0 is not proven{why}"
        )
    return _ZERO


def _amount_or_empty_list(invoice: Mapping[str, Any], name: str, parts: str, why: str) -> Decimal:
    """The documented total `name`; without it, 0 only when the invoice lists no `parts` at all.

    docs/providers.md §3.6: in the documented sample the entries of `tax_items[]` and `discounts[]`
    are rates, not amounts (tax 46.3 % of 334.18 = 154.73 = `tax_amount`; discount 50.54 % of 675.65 =
    341.47 = `discount_amount`), so adding them up is no substitute for the total. The one exact
    fallback is an empty list: an invoice with no tax item has no tax.
    """
    value = to_decimal(invoice.get(name), field=name)
    if value is not None:
        return value
    items = invoice.get(parts)
    if isinstance(items, list) and not items:
        return _ZERO
    if isinstance(items, list):
        raise ValueProblem(
            f"{name}: missing or null, and {parts}[] holds rates rather than amounts, so it is not added up{why}"
        )
    raise ValueProblem(f"{name}: missing or null{why}")


def map_item(item: Mapping[str, Any], account: str, invoice_id: str, line_number: int) -> dict[str, Any]:
    """Map one Kitchen line item to a canonical `invoice_items` row.

    `amount` is read as the price of one unit, so the line's subtotal is `quantity x amount`
    (docs/canonical-model.md, Kitchen lines). The docs only call it the item's amount; this is the
    reading under which the item's `quantity` means anything: a "2.00" x 150.00 line is worth
    300.00. Were `amount` the line total, unit_price and subtotal would be off by the quantity
    on every line whose quantity is not 1.

    Raises:
        ValueProblem: quantity or amount missing or not a number.
    """
    if not isinstance(item, Mapping):
        raise ValueProblem(f"items[{line_number}]: expected an object, got {type(item).__name__}")
    # docs/providers.md §3.4 [DOC]: `quantity` is a string ("1.00").
    quantity = to_decimal(item.get("quantity"), field="items[].quantity")
    unit_price = to_decimal(item.get("amount"), field="items[].amount")
    if quantity is None or unit_price is None:
        raise ValueProblem(f"items[{line_number}]: quantity and amount are required")
    subtotal = to_decimal(quantity * unit_price, field="items[].quantity x amount")
    return {
        "provider": PROVIDER,
        "account": account,
        "invoice_id": invoice_id,
        "line_number": line_number,
        "item_id": to_text(item.get("id")),
        "name": to_text(item.get("title")),
        "description": to_text(item.get("description")),
        "quantity": quantity,
        "unit": None,
        "unit_price": unit_price,
        # docs/providers.md §3.4 [DOC]: discounts and taxes are per invoice, never per line.
        "discount_amount": _ZERO,
        "tax_rate": None,
        "tax_amount": None,
        "subtotal": subtotal,
        "total": None,
    }


def map_invoice(invoice: Mapping[str, Any], account: str, names: Mapping[str, str | None]) -> MappedInvoice:
    """Map one Kitchen invoice and its `items[]` to canonical rows.

    Args:
        invoice: the invoice object as `GET /api/invoices` lists it.
        account: the workspace, stored in the `account` column.
        names: client id → name, from the clients listing; the invoice carries only the id.

    Raises:
        ValueProblem: no id; no total or tax amount (subtotal is derived from them); a null shipping
            amount, or an absent one the invoice's figures do not prove to be 0; no discount amount
            while discounts are listed; an unknown status or currency; an unreadable date or amount.
    """
    invoice_id = to_text(invoice.get("id"))
    if not invoice_id:
        raise ValueProblem("invoice without an id")
    status = canonical_status(invoice.get("status"))
    total = to_decimal(invoice.get("total_amount"), field="total_amount")
    if total is None:
        raise ValueProblem("total_amount is missing")
    derives = " (subtotal = total_amount − tax_amount − shipping_amount cannot be derived)"
    tax = _amount_or_empty_list(invoice, "tax_amount", "tax_items", derives)
    discount = _amount_or_empty_list(invoice, "discount_amount", "discounts", "")
    shipping = _shipping(invoice, discount, tax, total, derives)
    # docs/providers.md §3.2 [DOC]: `client` is a user id and may be null (an invoice with no client).
    client_id = to_text(invoice.get("client"))
    items = invoice.get(LINES) or []
    if not isinstance(items, list):
        raise ValueProblem("items is not a list")
    row = {
        "provider": PROVIDER,
        "account": account,
        "invoice_id": invoice_id,
        "client_id": client_id,
        "client_name": names.get(client_id) if client_id is not None else None,
        "number": to_text(invoice.get("number")),
        "document_type": _document_type(invoice.get("type")),
        "status": status,
        "provider_status": to_text(invoice.get("status")),
        # docs/canonical-model.md, Kitchen column: archived means `archived_at` is set.
        "is_archived": invoice.get("archived_at") is not None,
        # docs/providers.md §3.4 [DOC]: dates are ISO timestamps; the calendar day is read in their offset.
        "issue_date": parse_date(invoice.get("issue_date"), field="issue_date"),
        "due_date": parse_date(invoice.get("due_date"), field="due_date"),
        "currency": _currency(invoice.get("currency")),
        # docs/canonical-model.md, Kitchen column: Kitchen sends no subtotal; it is what the total
        # holds before tax and shipping (already net of discounts).
        "subtotal": total - tax - shipping,
        "discount_total": discount,
        "tax_total": tax,
        "withholding_total": _ZERO,
        "shipping_total": shipping,
        "total": total,
        "balance_due": balance_due(status, total),
        "created_at": parse_timestamp(invoice.get("created_at"), field="created_at"),
        "updated_at": parse_timestamp(invoice.get("updated_at"), field="updated_at"),
        "paid_at": parse_timestamp(invoice.get("paid_at"), field="paid_at"),
        "voided_at": parse_timestamp(invoice.get("voided_at"), field="voided_at"),
        "reference": None,
        "notes": to_text(invoice.get("memo")),
    }
    lines = [map_item(item, account, invoice_id, number) for number, item in enumerate(items, start=1)]
    return MappedInvoice(row, lines)


# What this mapping reads of a record, per record type (sources/shared/structure.py, `Reads`): a field
# here that vanishes from the API's payloads is an error of the `schema_drift` check (docs/checks.md).
READS = Reads(
    invoice=(
        "$.id",
        "$.client",
        "$.number",
        "$.type",
        "$.status",
        "$.archived_at",
        "$.issue_date",
        "$.due_date",
        "$.currency",
        "$.amount",
        "$.total_amount",
        "$.tax_amount",
        "$.tax_items",
        "$.discount_amount",
        "$.discounts",
        "$.shipping_amount",
        "$.created_at",
        "$.updated_at",
        "$.paid_at",
        "$.voided_at",
        "$.memo",
        "$.items",
    ),
    line=("$.items[].id", "$.items[].title", "$.items[].description", "$.items[].quantity", "$.items[].amount"),
    client=("$.id", "$.name", "$.email", "$.created_at", "$.updated_at"),
)
