"""Kitchen — kitchen.co (docs/providers.md §3): a Laravel workspace API, newest-created first.

Routes: `GET /api/clients`, `GET /api/invoices`, `GET /api/clients/{id}`, `GET /api/invoices/{id}`.
Kitchen runs on Laravel [INF, §3 identification], so auth failures, validation errors, paging and
the throttle answer the way Laravel's defaults do; each quirk is noted where it is coded.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sandbox import framework
from sandbox.framework import App, FixedWindow, HeaderKey, Request, Response, apply_now, json_response, public, route
from sandbox.kitchen import data

STATES = ("all", "active", "archived")
DEFAULT_PER_PAGE = 20  # §3.3
MAX_PER_PAGE = 100  # no maximum is documented; many Laravel APIs cap at 100 [INF]


def expects_json(request: Request) -> bool:
    """Laravel's `Request::expectsJson()`: an AJAX call accepting anything, or one that wants JSON."""
    first = request.headers.get("accept", "").split(",")[0].split(";")[0].strip().lower()
    ajax = request.headers.get("x-requested-with", "") == "XMLHttpRequest"
    return "/json" in first or "+json" in first or (ajax and first in ("", "*/*", "*"))


def _created(row: dict[str, Any]) -> tuple[str, str]:
    return row["created_at"], row["id"]


@dataclass(kw_only=True)
class Options(framework.Options):
    clients: int = 8  # how many clients and invoices to generate
    invoices: int = 45
    workspace: str = "acme"  # the workspace subdomain (used in absolute links and the login redirect)
    api_key: str = "kt_sandbox_3f9a2c71d04e4b5e"  # the one valid bearer token
    rate_window: float = 60.0  # the throttle window in seconds (Laravel: 60) of `requests_per_minute` per token
    # False simulates a proxy that strips `Accept` and `X-Requested-With`: unauthenticated calls
    # are then redirected to the login page whatever the client sent.
    honour_json_headers: bool = True


class KitchenApp(App):
    """One Kitchen workspace behind its API (`create_app`)."""

    name = "kitchen"

    def __init__(self, **options: Any) -> None:
        o = self.options = Options(**options)
        super().__init__(latency=o.latency)
        self.api_key, self.public_url = o.api_key, f"https://{o.workspace}.kitchen.co"
        self.auth = HeaderKey("Authorization", o.api_key, ("Bearer",))  # §3.1: bearer token
        self.throttle = FixedWindow(o.requests_per_minute, o.rate_window)  # Laravel's throttle [INF, §3.5]
        self.clients, self.invoices = data.generate(o.seed, o.clients, o.invoices, o.today)
        # The published "List all invoices" example is one more invoice, unchanged (its client user is not
        # among the listed clients: no client sample is published).
        published = framework.published_sample(self.name, "list_invoices.json")["data"] if o.fixtures else []
        for invoice in published:
            self.invoices.append(invoice)
        self.published = {i["id"] for i in published}  # served as written: never recomputed
        stamps = [data.latest_stamp(c) for c in self.clients] + [self.invoices.latest]
        stamps += [v for row in published for k, v in row.items() if k.endswith("_at") and v]
        self._now = max(dt.datetime.fromisoformat(v) for v in stamps if v) + dt.timedelta(days=1)
        self._ids = data.ids_from(random.Random(o.seed + 1))
        self.gone: set[str] = set()  # deleted clients still listed

    def wants_json(self, request: Request) -> bool:
        """Whether Laravel sees a request that "expects JSON" (the headers are stripped unless honoured)."""
        return expects_json(request) and self.options.honour_json_headers

    def route_path(self, request: Request) -> str:
        return "/" + "/".join(p for p in request.path.split("/") if p)  # Laravel ignores empty segments

    def guard(self, request: Request, route: Any) -> Response | None:
        if self.auth(request) is None:
            # Laravel: a JSON 401 only when the request "expects JSON", else a redirect to login.
            if not self.wants_json(request):
                headers = {"Location": f"{self.public_url}/login", "Content-Type": "text/html; charset=UTF-8"}
                return Response(302, b"", headers)
            return json_response({"message": "Unauthenticated."}, 401)
        allowed, request.reply_headers = self.throttle.hit(self.api_key)
        if not allowed:  # 429 with Retry-After and X-RateLimit-* (§3.5 [INF])
            return json_response({"message": "Too Many Attempts."}, 429)
        return None

    def not_found(self, request: Request) -> Response:
        if request.method != "GET":
            return json_response({"message": f"The {request.method} method is not supported for this route."}, 405)
        return json_response({"message": f"The route {request.path.lstrip('/')} could not be found."}, 404)

    @route("GET", "/api/clients/{record_id}")
    def show_client(self, request: Request, record_id: str) -> Response:
        return self._show(next((c for c in self.clients if c["id"] == record_id and c["id"] not in self.gone), None))

    @route("GET", "/api/invoices/{record_id}")
    def show_invoice(self, request: Request, record_id: str) -> Response:
        found = self.invoices.find(record_id)
        return self._show(None if found is None else self.invoices.record(found))

    def _show(self, found: dict[str, Any] | None) -> Response:
        if found is None:
            return json_response({"message": "No query results for the given id."}, 404)
        return json_response({"data": public(found)})

    @route("GET", "/api/clients")
    def list_clients(self, request: Request) -> Response:
        url = f"{self.public_url}/api/clients"  # §3.2: absolute links on clients

        def newest_first() -> list[dict[str, Any]]:
            basis = tuple(map(_created, self.clients))
            return self.derived("clients", lambda: sorted(self.clients, key=_created, reverse=True), basis)

        return self._list(request, newest_first, {}, url, url)

    @route("GET", "/api/invoices")
    def list_invoices(self, request: Request) -> Response:
        # §3.3: `state` is `all`, `active` (the default) or `archived`
        errors: dict[str, list[str]] = {}
        state = request.arg("state", "active")
        if state not in STATES:
            errors["state"] = ["The selected state is invalid."]

        # §3.6: the sample's links are relative, with a slash before the query; meta paths without it
        return self._list(request, lambda: self._newest_first(str(state)), errors, "/api/invoices/", "/api/invoices")

    def _newest_first(self, state: str) -> Sequence[dict[str, Any]]:
        """The invoices of `state`, newest created first (§3.3 [DOC]): ordered once for the pages that follow, again
        after a mutation or a change to a record handed out."""
        codes, others = self.derived(state, lambda: self.invoices.newest_first(state), self.invoices.basis())
        return framework.Listing(codes, lambda c: others[-1 - c] if c < 0 else self.invoices.generated.peek(c))

    def _list(
        self, request: Request, ordered: Callable[[], Sequence[dict[str, Any]]], errors: dict, links: str, meta: str
    ) -> Response:
        """A page of `ordered()` (newest created first, §3.3 [DOC]), or Laravel's answer to invalid parameters."""
        paging = {}
        for name, default in (("page", 1), ("per_page", DEFAULT_PER_PAGE)):
            try:
                number = request.int_arg(name, default)
                paging[name] = number if number >= 1 else default
            except ValueError:
                errors[name] = [f"The {name.replace('_', ' ')} field must be an integer."]
        if errors:
            if not self.wants_json(request):
                # Laravel redirects a failed validation back to the previous page when no JSON is wanted.
                return Response(302, b"", {"Location": f"{self.public_url}/"})
            # Laravel's 422 validation body: the first message, "(and N more errors)", every field's list
            first, more = next(iter(errors.values()))[0], sum(len(v) for v in errors.values()) - 1
            message = first + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")
            return json_response({"message": message, "errors": errors}, 422)
        per_page = min(paging["per_page"], MAX_PER_PAGE)
        chunk, body = framework.laravel_page(ordered(), paging["page"], per_page, links=links, meta=meta)
        return json_response({"data": [public(r) for r in chunk], **body})

    # --- configuration, summary, mutations ----------------------------------------------------
    def config(self, base_url: str) -> dict[str, str | None]:
        return {"base_url": f"{base_url}/api", "workspace": self.options.workspace, "api_key": self.api_key}

    def summary_figures(self) -> tuple[int, list[tuple[str | None, Decimal, int]]]:
        return len(self.clients), list(self.invoices.figures())

    def _tick(self) -> str:
        self._now += dt.timedelta(minutes=1)
        return data.stamp(self._now)

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        """A copy of one invoice as the API shows it."""
        with self.lock:
            found = self.invoices.find(invoice_id)
            if found is None:
                raise KeyError(invoice_id)
            return dict(public(self.invoices.record(found)))

    def oldest_invoice_id(self) -> str:
        """The invoice created first: the last one of the last page."""
        with self.lock:
            return str(self._newest_first("all")[-1]["id"])

    def _find(self, record_id: str, rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The record to change: a client of `rows`, else an invoice (a generated one is held from then on)."""
        if rows is None:
            invoice = self.invoices.find(record_id)
            rows = (
                []
                if invoice is None
                else [self.invoices.generated.hold(invoice) if isinstance(invoice, int) else invoice]
            )
        found = next((r for r in rows if r["id"] == record_id), None)
        if found is None:
            raise KeyError(record_id)
        return found

    def _changed(self, invoice: dict[str, Any], now: str) -> None:
        if invoice["id"] not in self.published:
            data.recompute(invoice)
        invoice["updated_at"] = now

    def update_invoice(self, invoice_id: str, **fields: Any) -> None:
        """Change fields; a `status` sets its timestamp, a finalised draft gets its number (§3.4 [INF])."""
        invoice, now = self._find(invoice_id), self._tick()
        invoice.update(apply_now(fields, now))
        if "status" in fields:
            if fields["status"] in data.STAMPED:
                invoice[data.STAMPED[fields["status"]]] = now
            if fields["status"] != "draft" and invoice["number"] is None:
                invoice["number"] = f"PREFIX-{len(self.invoices) + 100:05d}"
        self._changed(invoice, now)

    def remove_line(self, invoice_id: str, index: int = -1) -> dict[str, Any]:
        invoice = self._find(invoice_id)
        item: dict[str, Any] = invoice["items"].pop(index)
        self._changed(invoice, self._tick())
        return item

    def delete_invoice(self, invoice_id: str) -> None:
        self.invoices.remove(self._find(invoice_id))

    def add_invoice(self, client_id: Any = None, status: str = "open", **fields: Any) -> str:
        """A new invoice, created now: it comes first in the listing. Returns its id."""
        first, now, rng = self.invoices[0], self._tick(), random.Random(len(self.invoices))
        args = (len(self.invoices) + 1, client_id, first["creator"], first["billing_profile"], self._now, status)
        invoice = data.make_invoice(rng, self._ids, *args)
        invoice.update(fields, updated_at=now)
        self.invoices.append(invoice)
        return str(invoice["id"])

    def update_client(self, client_id: str, **fields: Any) -> None:
        """Change a client (name...); bumps the client's `updated_at` (its invoices do not change)."""
        client, now = self._find(client_id, self.clients), self._tick()
        client.update(apply_now(fields, now), updated_at=now)

    def delete_client(self, client_id: str, *, listed: bool = False) -> None:
        if listed:
            self.gone.add(client_id)
        else:
            self.clients.remove(self._find(client_id, self.clients))

    def add_client(self, **fields: Any) -> str:
        self._tick()
        client = {**data.make_client(random.Random(len(self.clients)), self._ids, self._now), **fields}
        self.clients.append(client)
        return str(client["id"])


create_app = KitchenApp
bench_options = framework.half_the_clients
