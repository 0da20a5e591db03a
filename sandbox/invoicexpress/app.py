"""A simulator of the InvoiceXpress API v2, as documented (docs/providers.md §1, seeds 000/001).

Implemented:
- `GET /clients.json` and `POST /clients/{client_id}/invoices.json`, paged with `page` and
  `per_page` and a `pagination` object (`total_entries`, `current_page`, `total_pages`,
  `per_page`). `per_page` defaults to the account setting (10, 20 or 30) and is capped at
  `max_per_page`: the docs give no maximum, so clients must read it back.
- The per-client listing's optional JSON body `{"filter": {"status", "by_type", "archived"}}`.
  A dimension left out is not filtered, except `archived`: without it only non-archived
  documents come back, as in the application's default list [INF: undocumented]. The status
  filter accepts `sent` for `final` documents (the documented "incoherence").
- `api_key` in the query string: missing or wrong → 401 `{"errors":{"error":"Invalid API key"}}`.
- Unknown client → 404 `{"errors":[{"error":"Client not found"}]}` (spec schema `404Clients`).
- 780 requests per minute per account; beyond that 429. No `Retry-After` is documented, so
  none is sent unless `retry_after` is set.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from sandbox.invoicexpress.data import Account, iso_of
from sandbox.server import Request, Response, SandboxApp, WindowBudget, json_response

DOCUMENTED_BUDGET = 780  # requests per minute per account (docs.invoicexpress.com, "Request limits")
_INVOICES_PATH = re.compile(r"^/clients/(?P<client>[^/]+)/invoices\.json$")


class InvoiceXpressSandbox(SandboxApp):
    """The simulator. See the module docstring for what it implements.

    Args:
        seed, clients, invoices_per_client, lines_per_invoice: the generated account.
        account_name: the account subdomain the pipeline is configured with.
        api_key: the only key accepted.
        account_per_page: the account setting used when `per_page` is not sent (10, 20 or 30).
        max_per_page: the largest page served.
        requests_per_minute: the per-account budget; None disables it.
        retry_after: seconds to announce in `Retry-After` on 429 (None: no header, as documented).
        budget_window: the budget's window in seconds (60 as documented; shorter in tests).
        latency: seconds added to every response.
    """

    name = "invoicexpress"

    def __init__(
        self,
        *,
        seed: int = 42,
        clients: int = 12,
        invoices_per_client: int = 9,
        lines_per_invoice: tuple[int, int] = (1, 5),
        account_name: str = "sandbox",
        api_key: str = "ix-sandbox-key-4f1c9a",
        account_per_page: int = 10,
        max_per_page: int = 50,
        requests_per_minute: int | None = DOCUMENTED_BUDGET,
        retry_after: float | None = None,
        budget_window: float = 60.0,
        latency: float = 0.0,
    ) -> None:
        super().__init__(latency=latency)
        self.account = Account(seed, clients, invoices_per_client, lines_per_invoice)
        self.account_name = account_name
        self.api_key = api_key
        self.account_per_page = account_per_page
        self.max_per_page = max_per_page
        self.budget = WindowBudget(requests_per_minute, budget_window)
        self.retry_after = retry_after

    # --- HTTP ------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.arg("api_key") != self.api_key:
            return json_response({"errors": {"error": "Invalid API key"}}, 401)
        wait = self.budget.check(self.api_key)
        if wait is not None:
            headers = {"Retry-After": f"{math.ceil(self.retry_after)}"} if self.retry_after is not None else {}
            return json_response({"errors": {"error": "Too many requests"}}, 429, headers)
        if request.method == "GET" and request.path == "/clients.json":
            return self._clients(request)
        match = _INVOICES_PATH.match(request.path)
        if match and request.method == "POST":
            return self._client_invoices(request, match.group("client"))
        return json_response({"errors": {"error": "Not found"}}, 404)

    def _page_args(self, request: Request) -> tuple[int, int] | Response:
        try:
            page = int(request.arg("page") or 1)
            per_page = int(request.arg("per_page") or self.account_per_page)
        except ValueError:
            return json_response({"error": {"code": "422", "message": "Some parameters were incorrect."}}, 422)
        if page < 1 or per_page < 1:
            return json_response({"error": {"code": "422", "message": "Some parameters were incorrect."}}, 422)
        return page, min(per_page, self.max_per_page)

    @staticmethod
    def _pagination(total: int, page: int, per_page: int) -> dict[str, int]:
        return {
            "total_entries": total,
            "current_page": page,
            "total_pages": max(1, math.ceil(total / per_page)),
            "per_page": per_page,
        }

    def _clients(self, request: Request) -> Response:
        paging = self._page_args(request)
        if isinstance(paging, Response):
            return paging
        page, per_page = paging
        total = self.account.n_clients
        start = (page - 1) * per_page
        clients = [self.account.client(i).data for i in range(start, min(total, start + per_page))]
        return json_response({"clients": clients, "pagination": self._pagination(total, page, per_page)})

    def _client_invoices(self, request: Request, raw_client_id: str) -> Response:
        not_found = json_response({"errors": [{"error": "Client not found"}]}, 404)
        try:
            client_id = int(raw_client_id)
        except ValueError:
            return not_found
        index = self.account.client_index(client_id)
        if index is None or client_id in self.account.vanished:
            return not_found
        paging = self._page_args(request)
        if isinstance(paging, Response):
            return paging
        page, per_page = paging
        try:
            body = request.json() or {}
        except ValueError:
            return json_response({"error": {"code": "400", "message": "Invalid JSON body."}}, 400)
        wanted = _Filter(body.get("filter") or {})
        start = (page - 1) * per_page
        invoices: list[Any]
        with self.lock:
            if wanted.everything and not self.account.overrides:
                total = self.account.invoices_per_client
                stop = min(total, start + per_page)
                invoices = [self.account.invoice(index, p) for p in range(start, stop)]
            else:
                matching = [i for i in self.account.client_invoices(index) if wanted.admits(i)]
                total = len(matching)
                invoices = matching[start : start + per_page]
        return json_response({"invoices": invoices, "pagination": self._pagination(total, page, per_page)})

    # --- what tests and the demo use -------------------------------------------------------------

    def pipeline_env(self, base_url: str) -> dict[str, str]:
        return {
            "SOURCES__INVOICEXPRESS__ACCOUNT_NAME": self.account_name,
            "SOURCES__INVOICEXPRESS__API_KEY": self.api_key,
            "SOURCES__INVOICEXPRESS__BASE_URL": base_url,
        }

    def all_invoices(self) -> list[dict[str, Any]]:
        with self.lock:
            return [i for c in range(self.account.n_clients) for i in self.account.client_invoices(c)]

    def summary(self) -> dict[str, Any]:
        invoices = [i for i in self.all_invoices() if i["client"]["id"] not in self.account.vanished]
        totals: dict[str, Decimal] = {}
        for invoice in invoices:
            iso = iso_of(invoice["currency"])
            totals[iso] = totals.get(iso, Decimal(0)) + Decimal(str(invoice["total"]))
        return {
            "clients": self.account.n_clients,
            "invoices": len(invoices),
            "lines": sum(len(i["items"]) for i in invoices),
            "totals": dict(sorted(totals.items())),
        }

    def find(self, invoice_id: int) -> dict[str, Any]:
        client_index, position = self.account.locate(invoice_id)
        invoice = self.account.invoice(client_index, position)
        if invoice is None:
            raise KeyError(invoice_id)
        return invoice

    def change_status(self, invoice_id: int, status: str) -> None:
        """Move a document to another state, as `PUT …/change-state.json` would."""
        with self.lock:
            invoice = dict(self.find(invoice_id))
            invoice["status"] = status
            self.account.overrides[invoice_id] = invoice

    def remove_line(self, invoice_id: int, position: int) -> None:
        """Remove one line from a draft-edited document and recompute its totals."""
        with self.lock:
            invoice = dict(self.find(invoice_id))
            items = [dict(i) for i in invoice["items"]]
            del items[position]
            before = sum((Decimal(str(i["subtotal"])) for i in items), Decimal(0))
            taxes = sum((Decimal(str(i["tax_amount"])) for i in items), Decimal(0))
            discount = sum((Decimal(str(i["discount_amount"])) for i in items), Decimal(0))
            rate = Decimal(invoice["retention"]) if invoice["retention"] else Decimal(0)
            withheld = (before * rate / 100).quantize(Decimal("0.01"))
            gross = sum((Decimal(str(i["subtotal"])) + Decimal(str(i["discount_amount"])) for i in items), Decimal(0))
            invoice.update(
                items=items,
                sum=gross,
                discount=discount,
                before_taxes=before,
                taxes=taxes,
                total=before + taxes - withheld,
            )
            self.account.overrides[invoice_id] = invoice

    def vanish_client(self, client_id: int) -> None:
        """Keep a client in the client list but answer 404 on its invoices, as when it is
        deleted between the two calls."""
        self.account.vanished.add(client_id)


class _Filter:
    """The documented `filter` body: status, by_type and archived lists."""

    def __init__(self, spec: dict[str, Any]) -> None:
        statuses = {str(s) for s in spec.get("status") or []}
        if "sent" in statuses:
            statuses.add("final")  # the filter says `sent` where documents say `final`
        self.statuses = statuses
        self.types = {str(t) for t in spec.get("by_type") or []}
        self.archived = {str(a) for a in spec.get("archived") or ["non_archived"]}
        self.everything = not self.statuses and not self.types and self.archived >= {"archived", "non_archived"}

    def admits(self, invoice: dict[str, Any]) -> bool:
        if self.statuses and invoice["status"] not in self.statuses:
            return False
        if self.types and invoice["type"] not in self.types:
            return False
        archived = bool(int(invoice["archived"])) if not isinstance(invoice["archived"], bool) else invoice["archived"]
        return ("archived" if archived else "non_archived") in self.archived


def create_app(seed: int = 42, latency: float = 0.0, **options: Any) -> InvoiceXpressSandbox:
    """An InvoiceXpress sandbox; `options` are `InvoiceXpressSandbox` keyword arguments."""
    return InvoiceXpressSandbox(seed=seed, latency=latency, **options)
