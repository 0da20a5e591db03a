"""InvoiceXpress documents and clients → canonical rows. Pure functions: no I/O, no config.

Every quirk handled here is listed with where it is documented (docs/providers.md §1, seeds 000/001).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from sources.invoicexpress.settings import NAME as PROVIDER
from sources.shared.model import TOTAL_TOLERANCE, MappedInvoice
from sources.shared.values import (
    ValueProblem,
    dumps,
    parse_dmy,
    to_bool,
    to_decimal,
    to_text,
)

ZERO = Decimal(0)

# docs/providers.md §1.4 [DOC]: `currency` is a name ("Euro"), not an ISO code. Names seen in the
# application's English and Portuguese interfaces; an unknown name is an error, never a guess.
CURRENCY_NAMES: dict[str, str] = {
    "euro": "EUR",
    "euros": "EUR",
    "€": "EUR",
    "us dollar": "USD",
    "dollar": "USD",
    "dólar": "USD",
    "dólar americano": "USD",
    "dólar dos estados unidos": "USD",
    "united states dollar": "USD",
    "$": "USD",
    "pound sterling": "GBP",
    "british pound": "GBP",
    "libra": "GBP",
    "libra esterlina": "GBP",
    "£": "GBP",
    "swiss franc": "CHF",
    "franco suíço": "CHF",
    "brazilian real": "BRL",
    "real": "BRL",
    "real brasileiro": "BRL",
    "angolan kwanza": "AOA",
    "kwanza": "AOA",
    "mozambican metical": "MZN",
    "metical": "MZN",
    "cape verde escudo": "CVE",
    "cape verdean escudo": "CVE",
    "escudo cabo-verdiano": "CVE",
    "canadian dollar": "CAD",
    "dólar canadiano": "CAD",
    "australian dollar": "AUD",
    "japanese yen": "JPY",
    "iene": "JPY",
    "yen": "JPY",
    "swedish krona": "SEK",
    "norwegian krone": "NOK",
    "danish krone": "DKK",
    "polish zloty": "PLN",
    "czech koruna": "CZK",
    "chinese yuan": "CNY",
    "renminbi": "CNY",
}

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

    docs/providers.md §1.5 [DOC spec schemas, 3P]: `{"errors":{"error": ...}}` (401, 404 documents),
    `{"errors":[{"error": ...}]}` (404 clients, real 422s), `{"error":{"code", "message"}}`
    (400/409/422), `{"errors":{field: [messages]}}` and `{"message": ...}`.
    """
    if not isinstance(body, dict):
        return None
    found: list[str] = []
    errors = body.get("errors")
    if isinstance(errors, dict):
        for field_name, value in errors.items():
            values = value if isinstance(value, list) else [value]
            prefix = "" if field_name == "error" else f"{field_name}: "
            found += [f"{prefix}{v}" for v in values]
    elif isinstance(errors, list):
        found += [str(e.get("error") or e) if isinstance(e, dict) else str(e) for e in errors]
    error = body.get("error")
    if isinstance(error, dict):
        found.append(" ".join(str(p) for p in (error.get("code"), error.get("message")) if p))
    elif error:
        found.append(str(error))
    if body.get("message"):
        found.append(str(body["message"]))
    return "; ".join(found) or None


def currency_code(name: Any) -> str:
    """ISO 4217 code for the currency name InvoiceXpress writes; ISO codes pass through."""
    if not isinstance(name, str) or not name.strip():
        raise ValueProblem(f"currency: missing ({name!r})")
    text = name.strip()
    if re.fullmatch(r"[A-Za-z]{3}", text) and text.lower() not in CURRENCY_NAMES:
        return text.upper()
    code = CURRENCY_NAMES.get(text.lower())
    if code is None:
        raise ValueProblem(
            f"currency: unknown currency name {text!r}; add it to CURRENCY_NAMES in sources/invoicexpress/mapping.py"
        )
    return code


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


def _retention_rate(value: Any) -> Decimal | None:
    # docs/providers.md §1.4 [DOC/3P]: `retention` is the withholding *percentage* as a string
    # ("25.0", "0.0", or empty); the doc example even shows "foo". Unknown → None.
    try:
        return to_decimal(value, field="retention")
    except ValueProblem:
        return None


def map_invoice(invoice: dict[str, Any], account: str) -> MappedInvoice:
    """Map one document of `POST /clients/{id}/invoices.json` to canonical rows.

    When the document's figures disagree with its retention rate, the provider's `total` is
    kept and the row breaks the total rule, for the caller to count (`model.total_mismatch`).

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

    before_taxes = _money(invoice, "before_taxes", default=ZERO)
    taxes = _money(invoice, "taxes", default=ZERO)
    total = _money(invoice, "total")
    if total is None:
        raise ValueProblem("total: missing")
    assert before_taxes is not None and taxes is not None
    # docs/providers.md §1.4 [3P legacy fixture]: total = before_taxes + taxes − withheld retention;
    # the withheld amount itself is not a field, so it is the difference (docs/canonical-model.md).
    withholding = before_taxes + taxes - total
    rate = _retention_rate(invoice.get("retention"))
    if rate is not None:
        expected = (before_taxes * rate / 100).quantize(Decimal("0.01"))
        if abs(withholding - expected) > TOTAL_TOLERANCE:
            # The figures disagree with the retention rate: keep the provider's total, report
            # the withholding the rate implies, and let the mismatch be counted, not hidden.
            withholding = expected

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
        "withholding_total": withholding,
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
        "raw": dumps(invoice),
    }
    items = [map_item(item, account, invoice_id, n) for n, item in enumerate(invoice.get("items") or [], 1)]
    return MappedInvoice(row, items)


def map_item(item: dict[str, Any], account: str, invoice_id: str, line_number: int) -> dict[str, Any]:
    """One line of a document. Lines have no id: the key is the 1-based position
    (docs/providers.md §1.4 [INF])."""
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
        "raw": dumps(item),
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
        "raw": dumps(client),
    }
