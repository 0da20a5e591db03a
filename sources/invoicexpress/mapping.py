"""InvoiceXpress documents and clients → canonical rows. Pure functions: no I/O, no config.

Every quirk handled here is listed with where it is documented (docs/providers.md §1, seeds 000/001).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from sources.invoicexpress.currencies import TABLE as CURRENCY_TABLE
from sources.invoicexpress.settings import NAME as PROVIDER
from sources.shared.currency import resolve
from sources.shared.model import MappedInvoice
from sources.shared.structure import Reads
from sources.shared.values import (
    ValueProblem,
    parse_dmy,
    to_bool,
    to_decimal,
    to_text,
)

ZERO = Decimal(0)
# docs/providers.md §1.4 [DOC]: a document lists its lines in `items`.
LINES = "items"

# docs/canonical-model.md, status mapping for InvoiceXpress. `sent` is the filter's word for `final`
# (docs/providers.md §1.4, "an incoherence in the API" [3P]).
STATUS_MAP = {
    "draft": "draft",
    "final": "open",
    "sent": "open",
    "second_copy": "open",
    "settled": "paid",
    "canceled": "void",
    "cancelled": "void",
    "deleted": "void",
}

# docs/providers.md §1.4 [3P legacy fixture]: drafts carry `draft` or `rascunho` as their number.
DRAFT_NUMBERS = {"draft", "rascunho", ""}


def error_message(body: Any) -> str | None:
    """The message of an InvoiceXpress error body, whichever of its shapes it takes.

    docs/providers.md §1.5 and §1.6 [DOC spec schemas, 3P]: `{"errors":{"error": ...}}` (401, 404
    documents), `{"errors":[{"error": ...}]}` (404 clients, real 422s), `{"errors":["..."]}` (422
    clients), `{"error":{"code", "message"}}` (400/404/409/422), `{"error": "..."}` (QR codes),
    `{"reason": ...}` (409 create), `{"base": [...]}` and `{"name": [...]}` (422 taxes: any field
    with a list of messages), `{"errors":{field: [messages]}}`, `{"message": ...}`, and a top-level
    array such as `["fiscal_id", "is invalid"]` (422 account, payments), read as one sentence.
    """
    if isinstance(body, list):
        words = [part.strip() for part in body if isinstance(part, str) and part.strip()]
        return " ".join(words) or None
    if not isinstance(body, dict):
        return None
    found: list[str] = []
    for key, value in body.items():
        if key == "errors":
            found += _errors(value)
        elif key == "error":
            if isinstance(value, dict):
                found.append(" ".join(str(p) for p in (value.get("code"), value.get("message")) if p))
            elif value:
                found.append(str(value))
        elif key in ("message", "reason"):
            if value:
                found.append(str(value))
        elif key == "base":
            found += [str(v) for v in _as_list(value) if v]
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            # A field's validation messages: `{"name": ["is not available."]}` → "name: is not available."
            found += [f"{key}: {v}" for v in value]
    return "; ".join(m for m in found if m) or None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _errors(errors: Any) -> list[str]:
    found: list[str] = []
    if isinstance(errors, dict):
        for field_name, value in errors.items():
            prefix = "" if field_name in ("error", "base") else f"{field_name}: "
            found += [f"{prefix}{v}" for v in _as_list(value) if v]
    elif isinstance(errors, list):
        found += [str(e.get("error") or e) if isinstance(e, dict) else str(e) for e in errors if e]
    elif errors:
        found.append(str(errors))
    return found


def currency_code(name: Any) -> str:
    """ISO 4217 code for the currency InvoiceXpress writes in `currency`.

    docs/providers.md §1.6 [DOC spec "Currency codes"]: documents carry the name from InvoiceXpress's
    own table (`sources/invoicexpress/currencies.py`, 157 rows). A name of that table gives its code
    (case, spaces and full stops aside); an ISO 4217 code passes; a symbol of the table (legacy XML
    fixtures write `€` in charts) gives its code only when one currency writes it (`$` is written by 29).

    Raises:
        ValueProblem: anything else, with the value in the message; never a guess.
    """
    return resolve(name, CURRENCY_TABLE, field="currency")


def snake_case(type_name: Any) -> str:
    """`InvoiceReceipt` → `invoice_receipt`; `VatMossInvoice` → `vat_moss_invoice`."""
    text = str(type_name or "").strip()
    if not text:
        raise ValueProblem("type: missing")
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text)
    return re.sub(r"[\s\-]+", "_", text).lower()


def canonical_status(status: Any) -> str:
    word = str(status or "").strip().lower()
    if word not in STATUS_MAP:
        raise ValueProblem(f"status: unknown InvoiceXpress status {status!r}")
    return STATUS_MAP[word]


def _money(invoice: dict[str, Any], key: str, *, default: Decimal | None = None) -> Decimal | None:
    # docs/providers.md §1.4 [DOC + 3P]: amounts are JSON numbers, sometimes strings ("12.30").
    value = to_decimal(invoice.get(key), field=key)
    return default if value is None else value


def _required(invoice: dict[str, Any], key: str, why: str) -> Decimal:
    # docs/canonical-model.md: a missing or null amount is never read as 0 to derive another column.
    value = to_decimal(invoice.get(key), field=key)
    if value is None:
        raise ValueProblem(f"{key}: missing or null{why}")
    return value


def withholding(before_taxes: Decimal, taxes: Decimal, total: Decimal) -> Decimal:
    """`withholding_total` as docs/canonical-model.md defines it: `before_taxes + taxes − total`.

    The withheld amount is not a field (docs/providers.md §1.4); `retention` is only a rate and is not
    used. A negative difference (a total above before_taxes + taxes) is no withholding: the column is
    never negative, so it is 0 and the row breaks the total rule, for the caller to count as a
    mismatch (`model.total_mismatch`), the provider's `total` standing.
    """
    difference = before_taxes + taxes - total
    return difference if difference > 0 else ZERO


def map_invoice(invoice: dict[str, Any], account: str) -> MappedInvoice:
    """Map one document of `POST /clients/{id}/invoices.json` to canonical rows.

    `total`, `before_taxes` and `taxes` are required: the subtotal, tax and withholding columns
    come from them. When `before_taxes + taxes` is below `total`, withholding is 0 and the row
    breaks the total rule, for the caller to count (`model.total_mismatch`).

    Raises:
        ValueProblem: a value that cannot be mapped without guessing.
    """
    invoice_id = to_text(invoice.get("id"))
    if not invoice_id:
        raise ValueProblem("id: missing")
    status = canonical_status(invoice.get("status"))
    client = invoice.get("client") or {}
    number = to_text(invoice.get("sequence_number"))
    if number is not None and number.strip().lower() in DRAFT_NUMBERS:
        number = None

    derives = " (withholding_total = before_taxes + taxes − total cannot be derived)"
    total = _required(invoice, "total", "")
    before_taxes = _required(invoice, "before_taxes", derives)
    taxes = _required(invoice, "taxes", derives)

    row = {
        "provider": PROVIDER,
        "account": account,
        "invoice_id": invoice_id,
        "client_id": to_text(client.get("id")),
        "client_name": to_text(client.get("name")),
        "number": number,
        "document_type": snake_case(invoice.get("type")),
        "status": status,
        "provider_status": to_text(invoice.get("status")),
        # docs/providers.md §1.4 [3P go client]: `archived` may be 1/0 instead of true/false.
        "is_archived": bool(to_bool(invoice.get("archived"), field="archived")),
        # docs/providers.md §1.4 [DOC]: dates are dd/mm/yyyy, with no time zone.
        "issue_date": parse_dmy(invoice.get("date"), field="date"),
        "due_date": parse_dmy(invoice.get("due_date"), field="due_date"),
        "currency": currency_code(invoice.get("currency")),
        "subtotal": before_taxes,
        "discount_total": _money(invoice, "discount", default=ZERO),
        "tax_total": taxes,
        "withholding_total": withholding(before_taxes, taxes, total),
        "shipping_total": ZERO,
        "total": total,
        # docs/canonical-model.md: total when open, 0 when paid or void, NULL for drafts.
        "balance_due": None if status == "draft" else (total if status == "open" else ZERO),
        "created_at": None,
        "updated_at": None,
        "paid_at": None,
        "voided_at": None,
        "reference": to_text(invoice.get("reference")),
        "notes": to_text(invoice.get("observations")),
    }
    items = [map_item(item, account, invoice_id, n) for n, item in enumerate(invoice.get(LINES) or [], 1)]
    return MappedInvoice(row, items)


def map_item(item: dict[str, Any], account: str, invoice_id: str, line_number: int) -> dict[str, Any]:
    """One line of a document. Lines have no id: the key is the 1-based position
    (docs/providers.md §1.4 [INF])."""
    if not isinstance(item, dict):
        raise ValueProblem(f"{LINES}[{line_number}]: expected an object, got {type(item).__name__}")
    tax_object = item.get("tax")
    tax: dict[str, Any] = tax_object if isinstance(tax_object, dict) else {}
    return {
        "provider": PROVIDER,
        "account": account,
        "invoice_id": invoice_id,
        "line_number": line_number,
        "item_id": None,
        "name": to_text(item.get("name")),
        "description": to_text(item.get("description")),
        # seed 000 [DOC]: `quantity` and `unit_price` are strings ("1.0") in lists, numbers in
        # the single-document schema: both are read exactly.
        "quantity": to_decimal(item.get("quantity"), field="items.quantity"),
        "unit": to_text(item.get("unit")),
        "unit_price": to_decimal(item.get("unit_price"), field="items.unit_price"),
        "discount_amount": to_decimal(item.get("discount_amount"), field="items.discount_amount") or ZERO,
        # docs/providers.md §1.4 [3P]: `tax.value` is a number in documents, a string in /taxes.json.
        "tax_rate": to_decimal(tax.get("value"), field="items.tax.value"),
        "tax_amount": to_decimal(item.get("tax_amount"), field="items.tax_amount"),
        "subtotal": to_decimal(item.get("subtotal"), field="items.subtotal"),
        "total": to_decimal(item.get("total"), field="items.total"),
    }


def map_client(client: dict[str, Any], account: str) -> dict[str, Any]:
    """One client of `GET /clients.json`. `fiscal_id` is the NIF (not in embedded clients)."""
    client_id = to_text(client.get("id"))
    if not client_id:
        # docs/providers.md §1.2: the doc example omits `id`; real responses carry it [3P].
        raise ValueProblem("client id: missing from /clients.json")
    return {
        "provider": PROVIDER,
        "account": account,
        "client_id": client_id,
        "name": to_text(client.get("name")),
        "email": to_text(client.get("email")) or None,
        "country": to_text(client.get("country")) or None,
        "tax_id": to_text(client.get("fiscal_id")) or None,
        "created_at": None,
        "updated_at": None,
    }


# What this mapping reads of a record, per record type (sources/shared/structure.py, `Reads`): a field
# here that vanishes from the API's documents is an error of the `schema_drift` check (docs/checks.md).
READS = Reads(
    invoice=(
        "$.id",
        "$.status",
        "$.type",
        "$.sequence_number",
        "$.archived",
        "$.date",
        "$.due_date",
        "$.currency",
        "$.before_taxes",
        "$.taxes",
        "$.total",
        "$.discount",
        "$.reference",
        "$.observations",
        "$.client",
        "$.client.id",
        "$.client.name",
        "$.items",
    ),
    line=(
        "$.items[].name",
        "$.items[].description",
        "$.items[].quantity",
        "$.items[].unit",
        "$.items[].unit_price",
        "$.items[].discount_amount",
        "$.items[].tax",
        "$.items[].tax.value",
        "$.items[].tax_amount",
        "$.items[].subtotal",
        "$.items[].total",
    ),
    client=("$.id", "$.name", "$.email", "$.country", "$.fiscal_id"),
)
