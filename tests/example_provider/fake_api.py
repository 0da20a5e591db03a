"""Example Books: the fake API the example provider is written against, on `sandbox.framework.App`.

What a provider's API reference (docs/providers.md) would say, in brief:

- Base URL: `/v1` under the host; one root for every account.
- Auth: the API key in an `X-Api-Key` header, raw; 401 `{"error": {"message": ...}}` without it.
- Paging: `?page=N&per_page=M` (at most 100), `pagination` = `{current_page, total_pages, per_page,
  total_entries}` on every page; past the last page, an empty list.
- Clients: `GET /v1/clients` → `{"clients": [...]}`.
- Invoices: `GET /v1/invoices` → `{"invoices": [...]}`, oldest first, no update filter. Amounts are
  decimal strings; `status` is `draft`, `sent`, `settled` or `cancelled`; an invoice names only its
  `client_id`; `amount_due` is what is still owed; every invoice has `updated_at`.
- Errors: `{"error": {"message": "..."}}`.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sandbox.framework import App, HeaderKey, Request, Response, json_response, page_number_meta, page_of, route

MAX_PER_PAGE = 100
API_KEY = "ex_test_9c1d"
STAMP = "2025-03-{day:02d}T09:00:00Z"

CLIENTS: list[dict[str, Any]] = [
    {"id": "c1", "name": "Acme Lda", "email": "ap@acme.example", "country": "PT", "vat_number": "PT501234567"},
    {"id": "c2", "name": "Globex Inc", "email": None, "country": "US", "vat_number": None},
    {"id": "c3", "name": "Initech GmbH", "email": "rechnung@initech.example", "country": "DE", "vat_number": None},
]
# id, client, status, currency, tax rate, lines (description, quantity, unit price)
INVOICES: list[tuple[str, str, str, str, str, list[tuple[str, str, str]]]] = [
    ("i1", "c1", "settled", "EUR", "0.23", [("Design", "10", "45.50"), ("Hosting", "1", "19.99")]),
    ("i2", "c1", "sent", "EUR", "0.23", [("Support", "2.5", "80.00")]),
    (
        "i3",
        "c2",
        "sent",
        "USD",
        "0",
        [("Licence", "3", "199.00"), ("Setup", "1", "250.00"), ("Training", "4", "62.50")],
    ),
    ("i4", "c2", "draft", "USD", "0", [("Licence", "1", "199.00")]),
    ("i5", "c3", "cancelled", "EUR", "0.19", [("Audit", "1", "1200.00")]),
    ("i6", "c3", "settled", "EUR", "0.19", [("Audit", "1", "1200.00"), ("Travel", "1", "310.40")]),
    ("i7", "c1", "sent", "EUR", "0.23", [("Design", "0.5", "45.50")]),
]
CENT = Decimal("0.01")


def _invoice(number: int, spec: tuple[str, str, str, str, str, list[tuple[str, str, str]]]) -> dict[str, Any]:
    invoice_id, client_id, status, currency, rate, lines = spec
    subtotal = sum((Decimal(q) * Decimal(p) for _, q, p in lines), Decimal(0))
    tax = (subtotal * Decimal(rate)).quantize(CENT)
    total = subtotal + tax
    due = total if status == "sent" else Decimal(0)
    return {
        "id": invoice_id,
        "number": f"EX-{number:04d}",
        "client_id": client_id,
        "status": status,
        "currency": currency,
        "issued_on": f"2025-03-{number:02d}",
        "due_on": f"2025-04-{number:02d}",
        "subtotal": str(subtotal),
        "tax": str(tax),
        "total": str(total),
        "amount_due": None if status == "draft" else str(due),
        "lines": [{"description": d, "quantity": q, "unit_price": p} for d, q, p in lines],
        "created_at": STAMP.format(day=number),
        "updated_at": STAMP.format(day=number),
    }


class ExampleBooks(App):
    """One Example Books account."""

    name = "example"

    def __init__(self, *, api_key: str = API_KEY, account: str = "demo", latency: float = 0.0) -> None:
        super().__init__(latency=latency)
        self.api_key, self.account = api_key, account
        self.auth = HeaderKey("X-Api-Key", api_key)
        self.clients = [{**c, "created_at": STAMP.format(day=1), "updated_at": STAMP.format(day=1)} for c in CLIENTS]
        self.invoices = [_invoice(n, spec) for n, spec in enumerate(INVOICES, start=1)]

    def guard(self, request: Request, route: Any) -> Response | None:
        if self.auth(request) is None:
            return json_response({"error": {"message": "invalid API key"}}, 401)
        return None

    def _page(self, request: Request, key: str, rows: list[dict[str, Any]]) -> Response:
        page = int(request.arg("page") or 1)
        per_page = min(int(request.arg("per_page") or 25), MAX_PER_PAGE)
        return json_response(
            {key: list(page_of(rows, page, per_page)), "pagination": page_number_meta(len(rows), page, per_page)}
        )

    @route("GET", "/v1/clients")
    def list_clients(self, request: Request) -> Response:
        return self._page(request, "clients", self.clients)

    @route("GET", "/v1/invoices")
    def list_invoices(self, request: Request) -> Response:
        return self._page(request, "invoices", self.invoices)

    def config(self, base_url: str) -> dict[str, str | None]:
        return {"base_url": f"{base_url}/v1", "api_key": self.api_key, "account": self.account}

    def summary_figures(self) -> tuple[int, Iterable[tuple[str | None, Decimal, int]]]:
        return len(self.clients), [(i["currency"], Decimal(i["total"]), len(i["lines"])) for i in self.invoices]
