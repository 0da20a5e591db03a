"""Fohlio (docs/providers.md §4): a team's contacts, projects and client invoices, as bare arrays.

Routes, under the documented server root (`/be/openapi` on app.fohlio.com; here the sandbox's root):
`GET /contacts` (page, per_page, updated_since, category_types[]), `GET /client_invoices`
(page, per_page, updated_since, project_id), `GET /client_invoices/{id}`, `GET /team`.
Readings where the docs are silent are noted where they are coded.
"""

from __future__ import annotations

import bisect
import datetime as dt
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from sandbox import framework
from sandbox.fohlio import data
from sandbox.fohlio.data import CURRENCIES, Contact, Invoice, generate, iso, money
from sandbox.framework import App, HeaderKey, Refused, Request, Response, SlidingWindow, apply_now, json_response, route

DEFAULT_TOKEN = "fohlio-sandbox-token-7f3a9c"
# §4.1: the docs do not say raw or `Bearer <token>`: `either` accepts both, `raw` or `bearer` only one
_SCHEMES = {"either": ("", "Bearer"), "raw": ("",), "bearer": ("Bearer",)}


def _bad_request(message: str) -> Refused:
    """A query parameter the published schema would reject: 400, as OpenAPI validation would [INF]."""
    return Refused(json_response({"error": message}, 400))


@dataclass(kw_only=True)
class Options(framework.Options):
    clients: int = 8  # contacts of the `client` category
    other_contacts: int = 5  # contacts of the other categories (suppliers, manufacturers...)
    projects: int = 7  # projects, each with one client
    invoices: int = 60  # client invoices in total, spread over the projects
    api_key: str = DEFAULT_TOKEN  # the valid token
    auth_mode: str = "either"  # `either`, `raw` or `bearer` (see `_SCHEMES`)
    # The team's default currency, which the API never shows; None makes invoices with no project
    # or client currency impossible to price.
    currency: str | None = "USD"
    rate_window: float = 60.0  # the window of `requests_per_minute`, in seconds
    honour_updated_since: bool = True  # False ignores `updated_since`, like an API that does not support it


class FohlioSandbox(App):
    """The Fohlio API over seeded data (`create_app`); `fixtures`: the published "Get a client invoice by id"
    example and its client."""

    name = "fohlio"

    def __init__(self, **options: Any) -> None:
        o = self.options = Options(**options)
        super().__init__(latency=o.latency)
        if o.auth_mode not in _SCHEMES:
            raise ValueError(f"auth_mode must be either, raw or bearer, not {o.auth_mode!r}")
        self.api_key, self.auth = o.api_key, HeaderKey("authorization", o.api_key, _SCHEMES[o.auth_mode])
        # §4.5: no rate limit is published; when set, 429 with a Retry-After header [INF]
        self.budget = SlidingWindow(o.requests_per_minute, o.rate_window)
        now = self.now()
        self.team = generate(o, now + framework.days_until(o.today, now.date()))  # the data ends a day before now
        self.published: dict[int, dict[str, Any]] = {}  # invoices served as published, by id
        if o.fixtures:
            self._load_fixtures()

    def _load_fixtures(self) -> None:
        """The published skeleton (`sandbox/fohlio/samples/`) as published but its two dates (as
        `tests/fohlio/test_mapping.py` reads it); its client is one more contact, its project not in `/team`."""
        invoice = framework.published_sample(self.name, "get_client_invoice.json")
        invoice["invoice_date"], invoice["payment_terms"][0]["due_date"] = "2023-11-07", "2023-12-07"
        client, updated = invoice["client"], dt.datetime.fromisoformat(invoice["updated_at"])
        category = client["category"]
        people, addresses = client["people"], client["addresses"]
        contact = Contact(client["id"], client["name"], category["type"], client["data"], addresses, people, 0, updated)
        contact.category_id = category["id"]
        self.team.contacts[contact.id] = contact
        self.published[invoice["id"]] = invoice

    @staticmethod
    def now() -> dt.datetime:
        return framework.utc_now().replace(microsecond=0)

    # --- HTTP ---------------------------------------------------------------------------
    def guard(self, request: Request, route: Any) -> Response | None:
        token = self.auth(request)
        if token is None:
            return json_response({"error": "Unauthorized"}, 401)
        wait = self.budget.check(token)
        if wait is not None:
            return json_response({"error": "Too Many Requests"}, 429, {"Retry-After": str(max(1, round(wait)))})
        return None

    @staticmethod
    def _int(request: Request, name: str, default: int | None) -> int | None:
        try:
            return request.int_arg(name, default)
        except ValueError:
            raise _bad_request(f"{name} must be an integer") from None

    def _page(self, request: Request, records: Sequence[Any]) -> list[Any]:
        """Page `page` of `records`, ordered by id so pages are stable; past the end: `[]` [INF]."""
        page = self._int(request, "page", 1) or 1
        per_page = self._int(request, "per_page", 25)  # §4.3: 25 by default, 1..100
        if per_page is None or not 1 <= per_page <= 100:
            raise _bad_request("per_page must be between 1 and 100")
        if page < 1:
            raise _bad_request("page must be at least 1")
        return list(framework.page_of(records, page, per_page))

    def _since(self, request: Request) -> dt.datetime | None:
        """§4.3 `updated_since` (Unix seconds): records updated at or after that second [INF]."""
        since = self._int(request, "updated_since", None)
        if since is None or not self.options.honour_updated_since:
            return None
        return dt.datetime.fromtimestamp(since, dt.UTC)

    @route("GET", "/contacts")
    def list_contacts(self, request: Request) -> Response:
        types, since = set(request.args("category_types[]")), self._since(request)  # §4.2

        def chosen() -> list[Contact]:
            return [
                c
                for _, c in sorted(self.team.contacts.items())
                if (not types or c.category_type in types) and (since is None or c.updated_at >= since)
            ]

        # chosen once for the pages that follow, again after a mutation
        listed = self.derived(("contacts", frozenset(types), since), chosen, len(self.team.contacts))
        return json_response([self.render_contact(c) for c in self._page(request, listed)])

    @route("GET", "/client_invoices")
    def list_invoices(self, request: Request) -> Response:
        since, project_id = self._since(request), self._int(request, "project_id", None)
        published = [
            (i["id"], int(i["project_id"]), dt.datetime.fromisoformat(i["updated_at"])) for i in self.published.values()
        ]
        basis = (self.team.invoices.basis(), tuple(published))
        ids, others = self.derived(("invoices", project_id, since), lambda: self._chosen(project_id, since), basis)
        chosen = framework.Listing(ids, lambda c: others[-1 - c] if c < 0 else self.team.invoices.peek(c))
        return json_response([self.render_invoice(i, single=False) for i in self._page(request, chosen)])

    def _chosen(self, project_id: int | None, since: dt.datetime | None) -> tuple[array[int], list[dict[str, Any]]]:
        """The invoices listed, by id (published ones after a generated one of the same id): codes, an invoice's id
        or -1 - an index in the second list, the published ones listed."""
        team = self.team.invoices.chosen(project_id, since)
        published = []
        for i in self.published.values():
            updated = dt.datetime.fromisoformat(i["updated_at"])
            if project_id in (None, int(i["project_id"])) and (since is None or updated >= since):
                published.append(i)
        published.sort(key=lambda i: int(i["id"]))
        codes, done = array("q"), 0
        for index, invoice in enumerate(published):
            at = bisect.bisect_right(team, invoice["id"])
            codes.extend(team[done:at])
            codes.append(-1 - index)
            done = at
        codes.extend(team[done:])
        return codes, published

    @route("GET", "/client_invoices/{invoice_id}")
    def show_invoice(self, request: Request, invoice_id: str) -> Response:
        number = int(invoice_id) if invoice_id.isdigit() else None
        invoice = self.published.get(number) or self.team.invoices.peek(number) if number is not None else None
        if invoice is None:
            return json_response({"error": "Not Found"}, 404)
        return json_response(self.render_invoice(invoice, single=True))

    @route("GET", "/team")
    def show_team(self, request: Request) -> Response:
        return json_response(self.render_team())

    # --- rendering ----------------------------------------------------------------------
    def render_contact(self, contact: Contact, *, embedded_in_list: bool = False) -> dict[str, Any]:
        """A contact as the API shows it; `embedded_in_list` gives the list-page drift."""
        body: dict[str, Any] = {"id": contact.id, "name": contact.name, "data": dict(contact.data)}
        if embedded_in_list:
            body["addresses"] = [{**a, "priority": i == 0} for i, a in enumerate(contact.addresses)]
            body["people"] = [{**p, "priority": p["email"].startswith("accounts@")} for p in contact.people]
            body["categories"] = [{"id": contact.category_id, "type": contact.category_type}]
        else:
            body["addresses"] = [dict(a) for a in contact.addresses]
            body["people"] = [dict(p) for p in contact.people]
            body["category"] = {"id": contact.category_id, "type": contact.category_type}
        return body

    def figures(self, invoice: Invoice) -> dict[str, Decimal]:
        """The invoice's amounts, computed from its lines and status."""
        return data.figures(invoice)

    def payment_terms(self, invoice: Invoice, total: Decimal) -> list[dict[str, Any]]:
        """Terms splitting the total, amounts as strings (as documented), in stored order."""
        if not invoice.term_days:
            return []
        start = dt.date.fromisoformat((invoice.invoice_date or invoice.created_at.date().isoformat())[:10])
        share, last = money(total / len(invoice.term_days)), len(invoice.term_days) - 1
        return [
            {
                "id": f"pt-{invoice.id}-{n + 1}",
                "amount": f"{share if n < last else total - share * last:.2f}",
                "due_date": (start + dt.timedelta(days=days)).isoformat(),
                "payment_terms": "Due on receipt" if days == 0 else f"Net {days}",
            }
            for n, days in enumerate(invoice.term_days)
        ]

    def render_invoice(self, invoice: Invoice | dict[str, Any], *, single: bool) -> dict[str, Any]:
        """An invoice as listed (single=False) or shown; a published one as published, its client as listed."""
        if isinstance(invoice, dict):
            listed = self.render_contact(self.team.contacts[invoice["client"]["id"]], embedded_in_list=True)
            return invoice if single else {**invoice, "client": listed}
        f = self.figures(invoice)
        client = self.team.contacts[invoice.client_id]
        return {
            "id": invoice.id, "project_id": invoice.project_id, "status": invoice.status,
            "invoice_date": invoice.invoice_date, "note": invoice.note,
            "payment_terms": self.payment_terms(invoice, f["amount_with_tax"]), "label": invoice.label,
            "created_at": iso(invoice.created_at), "updated_at": iso(invoice.updated_at), **f,
            "client": self.render_contact(client, embedded_in_list=not single),
            "items": [{k: v for k, v in asdict(i).items() if k != "is_service"} for i in invoice.items],
            "client_proposal_id": invoice.client_proposal_id, "purchase_order_ids": list(invoice.purchase_order_ids),
        }  # fmt: skip

    def render_team(self) -> dict[str, Any]:
        """The team dump, reduced to what it documents about projects and their currency."""
        projects = []
        for p in self.team.projects.values():
            currency = None
            if p.currency:
                currency = {"id": CURRENCIES[p.currency][0], "iso_code": p.currency, "name": CURRENCIES[p.currency][1]}
            client = {"id": p.client_id, "name": self.team.contacts[p.client_id].name}
            own: dict[str, Any] = {"enabled": p.currency is not None, "currency": currency, "exchange_rates": []}
            project = {"id": p.id, "name": p.name, "client": client, "billing_client": dict(client)}
            projects.append({**project, "project_currency": own})
        return {"id": self.team.id, "name": self.team.name, "projects": projects, "project_items": []}

    # --- what the data holds ------------------------------------------------------------
    def currency_of(self, invoice: Invoice) -> str | None:
        """The invoice's currency by the sandbox's own rule (see `sandbox.fohlio.data`)."""
        return self._currency(invoice.project_id, invoice.client_id)

    def _currency(self, project_id: int, client_id: int) -> str | None:
        project = self.team.projects[project_id]
        if project.currency:
            return project.currency
        client_currency = self.team.contacts[client_id].data.get("currency")
        if client_currency:
            return str(client_currency).upper()
        return self.team.default_currency or None

    def config(self, base_url: str) -> dict[str, str | None]:
        scheme = "Bearer" if self.options.auth_mode == "bearer" else None
        currency = self.team.default_currency or None
        return {"base_url": base_url, "api_key": self.api_key, "auth_scheme": scheme, "currency": currency}

    def summary_figures(self) -> tuple[int, list[tuple[str | None, Decimal, int]]]:
        clients = sum(1 for c in self.team.contacts.values() if c.category_type == "client")
        figures = list(self.team.invoices.figures(self._currency))
        default = self.team.default_currency or None  # a published invoice's project is not in /team
        figures += [(default, Decimal(i["amount_with_tax"]), len(i["items"])) for i in self.published.values()]
        return clients, figures

    def max_updated_at(self) -> dt.datetime:
        """The highest invoice `updated_at` the sandbox holds."""
        with self.lock:
            return self.team.invoices.latest()

    # --- mutations, as the real API would apply them --------------------------------------
    def update_invoice(self, invoice_id: int, *, updated_at: dt.datetime | None = None, **fields: Any) -> None:
        """Change invoice fields and bump `updated_at` (or set it: a change committed late)."""
        invoice, now = self.team.invoices[invoice_id], self.now()
        for name, value in apply_now(fields, now).items():
            if not hasattr(invoice, name):
                raise AttributeError(name)
            setattr(invoice, name, value)
        invoice.updated_at = updated_at or now

    def update_line(self, invoice_id: int, index: int, **fields: Any) -> None:
        """Change one line (`quantity`, `price`, `name`...); the invoice's figures follow."""
        vars(self.team.invoices[invoice_id].items[index]).update(fields)
        self.team.invoices[invoice_id].updated_at = self.now()

    def remove_line(self, invoice_id: int, index: int = -1) -> Any:
        invoice = self.team.invoices[invoice_id]
        removed = invoice.items.pop(index)
        invoice.updated_at = self.now()
        return removed

    def delete_invoice(self, invoice_id: int) -> None:
        del self.team.invoices[invoice_id]

    def add_invoice(self, client_id: Any = None, **fields: Any) -> int:
        """A new draft with no line on the client's first project (the first project if None)."""
        project = next(p for p in self.team.projects.values() if client_id in (None, p.client_id))
        number, now = max(self.team.invoices, default=30000) + 1, self.now()
        fresh = (project.id, project.client_id, "draft", None, f"INV-{number - 30000:05d}", None)
        self.team.invoices[number] = Invoice(number, *fresh, [], now, now)
        self.update_invoice(number, **fields)
        return number

    def update_client(self, client_id: int, **fields: Any) -> None:
        """Change a contact (`name`, `data`...)."""
        vars(self.team.contacts[client_id]).update(apply_now(fields, self.now()), updated_at=self.now())

    def delete_client(self, client_id: int, *, listed: bool = False) -> None:
        """Delete a contact with its projects and their invoices (`listed` keeps the contact)."""
        for project_id in [p.id for p in self.team.projects.values() if p.client_id == client_id]:
            del self.team.projects[project_id]
        for invoice_id in self.team.invoices.of_client(client_id):
            del self.team.invoices[invoice_id]
        if not listed:
            del self.team.contacts[client_id]

    def add_client(self, **fields: Any) -> int:
        contact_id = max(self.team.contacts, default=500) + 1
        self.team.contacts[contact_id] = Contact(contact_id, "New client", "client", {}, [], [], 100, self.now())
        self.update_client(contact_id, **fields)
        return contact_id


create_app = FohlioSandbox
bench_options = framework.half_the_clients
