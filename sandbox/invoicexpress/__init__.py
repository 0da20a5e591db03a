"""InvoiceXpress API v2 (docs/providers.md §1): clients and their documents, paged by page number.

Routes: `GET /clients.json`, `POST /clients/{client_id}/invoices.json` (a listing by POST, with
an optional `{"filter": {...}}` body). Quirks, where each is documented, are noted where coded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sandbox import framework
from sandbox.framework import App, QueryKey, Refused, Request, Response, SlidingWindow, json_response, route
from sandbox.invoicexpress.data import ISO_CODES, Account, as_listed, figures

DOCUMENTED_BUDGET = 780  # requests per minute per account (docs/providers.md §1.5, "Request limits")
_INCORRECT = {"error": {"code": "422", "message": "Some parameters were incorrect."}}


@dataclass(kw_only=True)
class Options(framework.Options):
    clients: int = 12  # the generated account: clients, documents per client, lines per document
    invoices_per_client: int = 9
    lines_per_invoice: tuple[int, int] = (1, 5)
    account_name: str = "sandbox"  # the account subdomain the pipeline is configured with
    api_key: str = "ix-sandbox-key-4f1c9a"  # the only key accepted
    account_per_page: int = 10  # the account setting used when `per_page` is not sent (10, 20 or 30)
    max_per_page: int = 50  # the largest page served
    requests_per_minute: int | None = DOCUMENTED_BUDGET
    retry_after: float | None = None  # seconds announced in `Retry-After` on 429 (None: no header, as documented)
    budget_window: float = 60.0  # the budget's window in seconds (60 as documented; shorter in tests)


class InvoiceXpressSandbox(App):
    """An InvoiceXpress account (`create_app`); `fixtures`: the published samples as one more client's documents."""

    name = "invoicexpress"

    def __init__(self, **options: Any) -> None:
        o = self.options = Options(**options)
        super().__init__(latency=o.latency)
        self.account = Account(o.seed, o.clients, o.invoices_per_client, o.lines_per_invoice, o.today)
        self.api_key, self.max_per_page = o.api_key, o.max_per_page
        self.auth = QueryKey("api_key", o.api_key)  # §1.1: `api_key` in the query string
        self.budget = SlidingWindow(o.requests_per_minute, o.budget_window)
        self.fixture_clients: list[dict[str, Any]] = []
        self.fixtures: dict[int, dict[str, Any] | None] = {}  # by id; None: deleted
        if o.fixtures:
            self._load_fixtures()

    def _load_fixtures(self) -> None:
        """The documented examples (`sandbox/invoicexpress/samples/`): the single document's client, holding it
        and the "List Client Invoices" one (whose embedded client id is the only value changed). The sandbox
        only lists, so the single document is held as a listing writes it: its lines' `unit_price` and
        `quantity` as strings (§1.4: the list schema's strings, where the single-document example has numbers)."""
        full = framework.published_sample(self.name, "get_invoice.json")["invoice"]
        [listed] = framework.published_sample(self.name, "list_client_invoices.json")["invoices"]
        self.fixture_clients.append(dict(full["client"]))
        listed["client"] = {**listed["client"], "id": full["client"]["id"]}
        self.fixtures.update({listed["id"]: listed, full["id"]: as_listed(full)})

    def guard(self, request: Request, route: Any) -> Response | None:
        if self.auth(request) is None:  # §1.5: 401 with this body
            return json_response({"errors": {"error": "Invalid API key"}}, 401)
        if self.budget.check(self.api_key) is not None:  # §1.5: 429; no Retry-After documented
            wait = self.options.retry_after
            headers = {"Retry-After": f"{math.ceil(wait)}"} if wait is not None else {}
            return json_response({"errors": {"error": "Too many requests"}}, 429, headers)
        return None

    def not_found(self, request: Request) -> Response:
        return json_response({"errors": {"error": "Not found"}}, 404)

    def _paging(self, request: Request) -> tuple[int, int]:
        """§1.2: `page`, `per_page` (the account setting by default; no documented maximum: capped)."""
        try:
            page, per_page = request.int_arg("page", 1), request.int_arg("per_page", self.options.account_per_page)
        except ValueError:
            page = per_page = 0
        if page < 1 or per_page < 1:
            raise Refused(json_response(_INCORRECT, 422))
        return page, min(per_page, self.max_per_page)

    @route("GET", "/clients.json")
    def list_clients(self, request: Request) -> Response:
        page, per_page = self._paging(request)
        listed, start = self.account.listed(), (page - 1) * per_page
        clients = [self.account.client(i) for i in listed[start : start + per_page]]
        clients += self.fixture_clients[max(0, start - len(listed)) : max(0, start + per_page - len(listed))]
        total = len(listed) + len(self.fixture_clients)
        return json_response({"clients": clients, "pagination": framework.page_number_meta(total, page, per_page)})

    @route("POST", "/clients/{client_id}/invoices.json")
    def list_invoices(self, request: Request, client_id: str) -> Response:
        try:
            number: int | None = int(client_id)
        except ValueError:
            number = None
        index = None if number is None else self.account.client_index(number)
        fixture = number is not None and any(c["id"] == number for c in self.fixture_clients)
        if (index is None and not fixture) or number in self.account.gone:  # spec schema `404Clients` (§1.5)
            return json_response({"errors": [{"error": "Client not found"}]}, 404)
        page, per_page = self._paging(request)
        try:
            body = request.json() or {}
        except ValueError:
            return json_response({"error": {"code": "400", "message": "Invalid JSON body."}}, 400)
        wanted, start = _Filter(body.get("filter") or {}), (page - 1) * per_page
        invoices: list[Any]
        if index is not None and wanted.everything and self.account.pristine():
            total = self.account.invoices_per_client
            invoices = [self.account.invoice(index, p) for p in range(start, min(total, start + per_page))]
        else:
            own = self.account.client_invoices(index) if index is not None else self._fixtures_of(number)
            matching = [i for i in own if wanted.admits(i)]
            total, invoices = len(matching), matching[start : start + per_page]
        return json_response({"invoices": invoices, "pagination": framework.page_number_meta(total, page, per_page)})

    def _fixtures_of(self, client_id: int | None) -> list[dict[str, Any]]:
        return [i for i in self.fixtures.values() if i is not None and i["client"]["id"] == client_id]

    # --- configuration, summary, mutations ----------------------------------------------------
    def config(self, base_url: str) -> dict[str, str | None]:
        return {"account_name": self.options.account_name, "api_key": self.api_key, "base_url": base_url}

    def all_invoices(self) -> list[dict[str, Any]]:
        """Every document, the generated ones first, then the published samples."""
        with self.lock:
            generated = [i for c in range(self.account.n_clients) for i in self.account.client_invoices(c)]
            return generated + [i for i in self.fixtures.values() if i is not None]

    def summary_figures(self) -> tuple[int, list[tuple[str | None, Decimal, int]]]:
        invoices = [i for i in self.all_invoices() if i["client"]["id"] not in self.account.gone]
        figures: list[tuple[str | None, Decimal, int]]
        figures = [(ISO_CODES[i["currency"]], Decimal(str(i["total"])), len(i["items"])) for i in invoices]
        return len(self.account.listed()) + len(self.fixture_clients), figures

    def find(self, invoice_id: int) -> dict[str, Any]:
        invoice = self.fixtures.get(invoice_id)
        if invoice_id not in self.fixtures and self.account.locate(invoice_id)[0] >= 0:
            invoice = self.account.invoice(*self.account.locate(invoice_id))
        if invoice is None:
            raise KeyError(invoice_id)
        return invoice

    def _store(self, invoice_id: int, invoice: dict[str, Any] | None) -> None:
        (self.fixtures if invoice_id in self.fixtures else self.account.overrides)[invoice_id] = invoice

    def update_invoice(self, invoice_id: int, **fields: Any) -> None:
        self._store(invoice_id, {**self.find(invoice_id), **fields})

    def remove_line(self, invoice_id: int, index: int = -1) -> dict[str, Any]:
        """Remove one line and recompute the document's totals (in cents), withholding included."""
        invoice = dict(self.find(invoice_id))
        items = [dict(i) for i in invoice["items"]]
        removed = items.pop(index)
        invoice.update(items=items, **figures(items, invoice.get("retention")))
        self._store(invoice_id, invoice)
        return removed

    def delete_invoice(self, invoice_id: int) -> None:
        self.find(invoice_id)
        self._store(invoice_id, None)

    def add_invoice(self, client_id: Any = None, **fields: Any) -> int:
        """A new document at the end of the client's list (generated from the seed, then `fields`)."""
        index = self.account.client_index(int(client_id))
        if index is None:
            raise KeyError(client_id)
        position = self.account.invoices_per_client + self.account.added.get(index, 0)
        self.account.added[index] = self.account.added.get(index, 0) + 1
        invoice_id = self.account.invoice_id(index, position)
        if fields:
            self.update_invoice(invoice_id, **fields)
        return invoice_id

    def update_client(self, client_id: int, **fields: Any) -> None:
        self.account.client_changes.setdefault(client_id, {}).update(fields)

    def delete_client(self, client_id: int, *, listed: bool = False) -> None:
        self.account.gone[client_id] = listed

    def add_client(self, **fields: Any) -> int:
        self.account.n_clients += 1
        client_id = self.account.client_id(self.account.n_clients - 1)
        if fields:
            self.update_client(client_id, **fields)
        return client_id


class _Filter:
    """The `filter` body (§1.3): status, by_type and archived lists. A dimension left out is not
    filtered, except `archived`: without it only non-archived documents come back, as in the
    application's default list [INF]. `sent` also selects `final` documents (the documented
    "incoherence", §1.5)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        statuses = {str(s) for s in spec.get("status") or []}
        self.statuses = statuses | {"final"} if "sent" in statuses else statuses
        self.types = {str(t) for t in spec.get("by_type") or []}
        self.archived = {str(a) for a in spec.get("archived") or ["non_archived"]}
        self.everything = not self.statuses and not self.types and self.archived >= {"archived", "non_archived"}

    def admits(self, invoice: dict[str, Any]) -> bool:
        archived = "archived" if int(invoice["archived"]) else "non_archived"  # 1/0 or a boolean (§1.6)
        chosen = (not self.statuses or invoice["status"] in self.statuses) and archived in self.archived
        return chosen and (not self.types or invoice["type"] in self.types)


create_app = InvoiceXpressSandbox


def bench_options(clients: int) -> dict[str, Any]:
    """`create_app` options of an account of `clients` clients for the benchmarks (benchmarks/rerun.py)."""
    return {"clients": clients, "invoices_per_client": 90, "lines_per_invoice": [3, 7], "requests_per_minute": None}
