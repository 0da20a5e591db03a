"""Example Books records → canonical rows. Pure functions: no I/O, no config, inputs never mutated.

Every quirk handled here names where it is documented (here the fake API's docstring,
`tests/example_provider/fake_api.py`). A record that cannot be mapped without guessing raises
`ValueProblem`; the driver counts it as skipped, names it in the run summary and carries on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sources.shared.currency import iso_4217
from sources.shared.model import MappedInvoice
from sources.shared.values import ValueProblem, parse_date, parse_timestamp, to_decimal, to_text

# fake_api.py, "Invoices": an invoice lists its lines in `lines`.
LINES = "lines"

PROVIDER = "example"

# fake_api.py, "Invoices": the status words, and their canonical meaning (docs/canonical-model.md).
STATUSES = {"draft": "draft", "sent": "open", "settled": "paid", "cancelled": "void"}

_ZERO = Decimal("0")


def map_client(client: Mapping[str, Any], account: str) -> dict[str, Any]:
    """One Example Books client → a canonical `clients` row.

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
        "country": to_text(client.get("country")),
        "tax_id": to_text(client.get("vat_number")),
        "created_at": parse_timestamp(client.get("created_at"), field="created_at"),
        "updated_at": parse_timestamp(client.get("updated_at"), field="updated_at"),
    }


def invoice_updated_at(invoice: Mapping[str, Any]) -> dt.datetime | None:
    """The invoice's `updated_at`, which the update cursor compares (fake_api.py, "Invoices")."""
    return parse_timestamp(invoice.get("updated_at"), field="updated_at")


def canonical_status(word: Any) -> str:
    """Raises `ValueProblem` for a word outside the documented list: reported, never guessed."""
    canonical = STATUSES.get((to_text(word) or "").lower())
    if canonical is None:
        raise ValueProblem(f"status: unknown Example Books status {word!r}")
    return canonical


def _amount(record: Mapping[str, Any], name: str) -> Decimal:
    # fake_api.py, "Invoices": amounts are decimal strings ("12.50"), read exactly; a missing one
    # is never taken as 0 (docs/canonical-model.md).
    value = to_decimal(record.get(name), field=name)
    if value is None:
        raise ValueProblem(f"{name}: missing or null")
    return value


def map_line(line: Mapping[str, Any], account: str, invoice_id: str, line_number: int) -> dict[str, Any]:
    """One invoice line → a canonical `invoice_items` row."""
    quantity, unit_price = _amount(line, "quantity"), _amount(line, "unit_price")
    return {
        "provider": PROVIDER,
        "account": account,
        "invoice_id": invoice_id,
        "line_number": line_number,
        "item_id": None,
        "name": to_text(line.get("description")),
        "description": None,
        "quantity": quantity,
        "unit": None,
        "unit_price": unit_price,
        "discount_amount": _ZERO,
        "tax_rate": None,
        "tax_amount": None,
        "subtotal": quantity * unit_price,
        "total": None,
    }


def map_invoice(invoice: Mapping[str, Any], account: str, names: Mapping[str, str | None]) -> MappedInvoice:
    """One Example Books invoice and its `lines[]` → canonical rows.

    Raises:
        ValueProblem: no id; an unknown status or currency; a missing amount; an unreadable date.
    """
    invoice_id = to_text(invoice.get("id"))
    if not invoice_id:
        raise ValueProblem("invoice without an id")
    status = canonical_status(invoice.get("status"))
    total = _amount(invoice, "total")
    client_id = to_text(invoice.get("client_id"))
    row = {
        "provider": PROVIDER,
        "account": account,
        "invoice_id": invoice_id,
        "client_id": client_id,
        # fake_api.py, "Invoices": an invoice carries only its client's id; the name comes from the clients listing.
        "client_name": names.get(client_id) if client_id is not None else None,
        "number": to_text(invoice.get("number")),
        "document_type": "invoice",
        "status": status,
        "provider_status": to_text(invoice.get("status")),
        "is_archived": False,
        "issue_date": parse_date(invoice.get("issued_on"), field="issued_on"),
        "due_date": parse_date(invoice.get("due_on"), field="due_on"),
        "currency": iso_4217(invoice.get("currency"), field="currency"),
        "subtotal": _amount(invoice, "subtotal"),
        "discount_total": _ZERO,
        "tax_total": _amount(invoice, "tax"),
        "withholding_total": _ZERO,
        "shipping_total": _ZERO,
        "total": total,
        # fake_api.py, "Invoices": `amount_due` is what is still owed.
        "balance_due": to_decimal(invoice.get("amount_due"), field="amount_due"),
        "created_at": parse_timestamp(invoice.get("created_at"), field="created_at"),
        "updated_at": parse_timestamp(invoice.get("updated_at"), field="updated_at"),
        "paid_at": None,
        "voided_at": None,
        "reference": None,
        "notes": None,
    }
    lines = invoice.get(LINES) or []
    if not isinstance(lines, list):
        raise ValueProblem("lines is not a list")
    return MappedInvoice(row, [map_line(line, account, invoice_id, n) for n, line in enumerate(lines, start=1)])


def error_message(body: Any) -> str | None:
    """fake_api.py, "Errors": `{"error": {"message": "..."}}`; None for a body without one."""
    error = body.get("error") if isinstance(body, Mapping) else None
    return to_text(error.get("message")) if isinstance(error, Mapping) else None
