"""A Kitchen workspace API simulator: `GET /api/clients`, `GET /api/invoices` and their show routes.

What it reproduces, and from where (docs/providers.md §3 and seed 003):
- Bearer auth. Kitchen runs on Laravel [INF], so an unauthenticated call gets a JSON 401
  `{"message": "Unauthenticated."}` only when the request "expects JSON" (Laravel's rule:
  `Accept` asks for JSON, or `X-Requested-With: XMLHttpRequest` with no specific `Accept`);
  otherwise a 302 redirect to the workspace's login page.
- `state` (`all`, `active` the default, `archived`); an invalid value is a Laravel validation
  error: 422 `{"message": ..., "errors": {"state": [...]}}`.
- Laravel resource-collection pagination (`page`, `per_page`; default 20): `data`, `links`,
  `meta` exactly as the doc samples show them: relative links on invoices
  (`/api/invoices/?page=1`, with the trailing slash of the sample), absolute ones on clients
  (`https://{workspace}.kitchen.co/api/clients?page=1`), and `meta.links` with Laravel's
  "« Previous" / page numbers / "Next »" entries. Like Laravel's default paginator, the links
  carry only `page`, not the other query parameters. The docs do not give a maximum `per_page`;
  this simulator caps it at 100, like many Laravel APIs (a plausible reading, noted as such).
- Newest-created first (invoices and clients, [DOC]).
- Laravel's throttle: beyond `requests_per_minute` per key in a window, 429
  `{"message": "Too Many Attempts."}` with `Retry-After`, `X-RateLimit-Limit`,
  `X-RateLimit-Remaining` (and the two `X-RateLimit-*` headers on every answer) [INF].
- Unknown routes and ids: 404 `{"message": ...}`.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from sandbox.kitchen import data
from sandbox.server import Request, Response, SandboxApp, json_response

STATES = ("all", "active", "archived")
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
ON_EACH_SIDE = 3


class LaravelThrottle:
    """Laravel's `throttle:N,1` middleware: a fixed window per key that starts on the first hit.

    Args:
        limit: requests allowed per window; None disables the throttle.
        window: the window length in seconds (60 in Laravel; shorter in tests).
    """

    def __init__(self, limit: int | None, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self._clock = limit, window, clock
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, key: str) -> tuple[bool, dict[str, str]]:
        """Count one request; returns whether it may pass and the headers to send."""
        if not self.limit:
            return True, {}
        now = self._clock()
        started, count = self._windows.get(key, (now, 0))
        if now - started >= self.window:
            started, count = now, 0
        if count >= self.limit:
            retry_after = max(1, math.ceil(started + self.window - now))
            return False, {
                "Retry-After": str(retry_after),
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time()) + retry_after),
            }
        self._windows[key] = (started, count + 1)
        return True, {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.limit - count - 1),
        }


def expects_json(request: Request) -> bool:
    """Laravel's `Request::expectsJson()`: an AJAX call accepting anything, or one that wants JSON."""
    accept = request.headers.get("accept", "")
    first = accept.split(",")[0].split(";")[0].strip().lower()
    wants_json = "/json" in first or "+json" in first
    accepts_any = first in ("", "*/*", "*")
    ajax = request.headers.get("x-requested-with", "") == "XMLHttpRequest"
    return wants_json or (ajax and accepts_any)


class KitchenApp(SandboxApp):
    """One Kitchen workspace behind its API.

    Args:
        seed: the data generator's seed.
        clients, invoices: how many of each to generate.
        workspace: the workspace subdomain (used in absolute links and the login redirect).
        api_key: the one valid bearer token.
        requests_per_minute: Laravel throttle limit per token; None (default) for no limit.
        rate_window: the throttle window in seconds (Laravel: 60).
        honour_json_headers: False simulates a proxy that strips `Accept` and `X-Requested-With`:
            unauthenticated calls are then redirected to the login page whatever the client sent.
        latency: seconds added to every response.
    """

    name = "kitchen"

    def __init__(
        self,
        seed: int = 42,
        *,
        clients: int = 8,
        invoices: int = 45,
        workspace: str = "acme",
        api_key: str = "kt_sandbox_3f9a2c71d04e4b5e",
        requests_per_minute: int | None = None,
        rate_window: float = 60.0,
        honour_json_headers: bool = True,
        latency: float = 0.0,
    ) -> None:
        super().__init__(latency=latency)
        self.workspace, self.api_key = workspace, api_key
        self.honour_json_headers = honour_json_headers
        self.throttle = LaravelThrottle(requests_per_minute, rate_window)
        self.clients, self.invoices = data.generate(seed, clients, invoices)
        latest = max(
            dt.datetime.fromisoformat(value)
            for row in [*self.clients, *self.invoices]
            for key, value in row.items()
            if key.endswith("_at") and isinstance(value, str)
        )
        self._now = latest + dt.timedelta(days=1)
        self._ids = data.Ids(random.Random(seed + 1))

    # --- HTTP ---------------------------------------------------------------------------------

    @property
    def public_url(self) -> str:
        return f"https://{self.workspace}.kitchen.co"

    def handle(self, request: Request) -> Response:
        token = request.headers.get("authorization", "")
        json_wanted = expects_json(request) and self.honour_json_headers
        if token != f"Bearer {self.api_key}":
            if not json_wanted:
                return Response(
                    302,
                    b"",
                    {"Location": f"{self.public_url}/login", "Content-Type": "text/html; charset=UTF-8"},
                )
            return json_response({"message": "Unauthenticated."}, 401)
        allowed, rate_headers = self.throttle.hit(token)
        if not allowed:
            return json_response({"message": "Too Many Attempts."}, 429, rate_headers)
        if request.method != "GET":
            return json_response(
                {"message": f"The {request.method} method is not supported for this route."},
                405,
                rate_headers,
            )
        with self.lock:
            response = self._route(request, json_wanted)
        response.headers.update(rate_headers)
        return response

    def _route(self, request: Request, json_wanted: bool) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] != ["api"] or len(parts) not in (2, 3) or parts[1] not in ("clients", "invoices"):
            return json_response({"message": f"The route {request.path.lstrip('/')} could not be found."}, 404)
        rows = self.clients if parts[1] == "clients" else self.invoices
        if len(parts) == 3:
            found = next((r for r in rows if r["id"] == parts[2]), None)
            if found is None:
                return json_response({"message": "No query results for the given id."}, 404)
            return json_response({"data": data.public(found)})
        errors: dict[str, list[str]] = {}
        selected = rows
        if parts[1] == "invoices":
            state = request.arg("state", "active")
            if state not in STATES:
                errors["state"] = ["The selected state is invalid."]
            elif state == "active":
                selected = [r for r in rows if r["archived_at"] is None]
            elif state == "archived":
                selected = [r for r in rows if r["archived_at"] is not None]
        page, per_page = (
            _positive(request.arg("page"), 1),
            _positive(request.arg("per_page"), DEFAULT_PER_PAGE),
        )
        if page is None:
            errors["page"] = ["The page field must be an integer."]
        if per_page is None:
            errors["per_page"] = ["The per page field must be an integer."]
        if errors:
            if not json_wanted:
                # Laravel redirects a failed validation back to the previous page when no JSON is wanted.
                return Response(302, b"", {"Location": f"{self.public_url}/"})
            first = next(iter(errors.values()))[0]
            more = sum(len(v) for v in errors.values()) - 1
            message = first + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")
            return json_response({"message": message, "errors": errors}, 422)
        assert page is not None and per_page is not None
        per_page = min(per_page, MAX_PER_PAGE)
        ordered = sorted(selected, key=lambda r: (r["created_at"], r["id"]), reverse=True)
        if parts[1] == "invoices":
            # The sample's links: relative, with a slash before the query; meta paths without it.
            path, link_base, meta_base = "/api/invoices", "/api/invoices/", "/api/invoices"
        else:
            path = link_base = meta_base = f"{self.public_url}/api/clients"
        return json_response(paginated(ordered, page, per_page, path, link_base, meta_base))

    # --- what tests and the demo read ----------------------------------------------------------

    def pipeline_env(self, base_url: str) -> dict[str, str]:
        return {
            "SOURCES__KITCHEN__BASE_URL": f"{base_url}/api",
            "SOURCES__KITCHEN__WORKSPACE": self.workspace,
            "SOURCES__KITCHEN__API_KEY": self.api_key,
        }

    def summary(self) -> dict[str, Any]:
        """Counts and totals per currency of everything `state=all` lists, from the raw data."""
        with self.lock:
            totals: dict[str, Decimal] = {}
            for invoice in self.invoices:
                totals[invoice["currency"]] = totals.get(invoice["currency"], Decimal("0")) + invoice["total_amount"]
            return {
                "clients": len(self.clients),
                "invoices": len(self.invoices),
                "lines": sum(len(i["items"]) for i in self.invoices),
                "totals": dict(sorted(totals.items())),
            }

    # --- mutations, as the real API would apply them -------------------------------------------

    def _tick(self) -> str:
        self._now += dt.timedelta(minutes=1)
        return data.stamp(self._now)

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        """A copy of one invoice as the API shows it."""
        with self.lock:
            return data.public(copy.deepcopy(self._find(invoice_id)))

    def oldest_invoice_id(self) -> str:
        """The invoice created first: the last one of the last page."""
        with self.lock:
            return min(self.invoices, key=lambda r: (r["created_at"], r["id"]))["id"]

    def _find(self, invoice_id: str) -> dict[str, Any]:
        for invoice in self.invoices:
            if invoice["id"] == invoice_id:
                return invoice
        raise KeyError(invoice_id)

    def update_invoice(self, invoice_id: str, **fields: Any) -> None:
        """Change fields of an invoice (memo, due_date...); bumps `updated_at`."""
        with self.lock:
            invoice = self._find(invoice_id)
            invoice.update(fields)
            data.recompute(invoice)
            invoice["updated_at"] = self._tick()

    def set_status(self, invoice_id: str, status: str) -> None:
        """Move an invoice to `status`, setting the matching lifecycle timestamp."""
        with self.lock:
            invoice = self._find(invoice_id)
            now = self._tick()
            invoice["status"] = status
            stamp_field = {
                "paid": "paid_at",
                "void": "voided_at",
                "uncollectible": "marked_uncollectible_at",
                "open": "finalized_at",
            }.get(status)
            if stamp_field:
                invoice[stamp_field] = now
            if status != "draft" and invoice["number"] is None:
                invoice["number"] = f"PREFIX-{len(self.invoices) + 100:05d}"
            data.recompute(invoice)
            invoice["updated_at"] = now

    def archive(self, invoice_id: str) -> None:
        """`POST /api/invoices/{id}/archive`: sets `archived_at` (and `updated_at`)."""
        with self.lock:
            invoice = self._find(invoice_id)
            invoice["archived_at"] = invoice["updated_at"] = self._tick()

    def add_line(self, invoice_id: str, title: str, quantity: str, amount: Decimal) -> str:
        """Add a line to an invoice; returns its `invi_` id."""
        with self.lock:
            invoice = self._find(invoice_id)
            item = {
                "amount": amount,
                "currency": invoice["currency"],
                "description": None,
                "id": self._ids("invi"),
                "quantity": quantity,
                "title": title,
            }
            invoice["items"].append(item)
            data.recompute(invoice)
            invoice["updated_at"] = self._tick()
            return item["id"]

    def remove_line(self, invoice_id: str, index: int = -1) -> dict[str, Any]:
        """Remove one line of an invoice (the last by default); returns it."""
        with self.lock:
            invoice = self._find(invoice_id)
            item = invoice["items"].pop(index)
            data.recompute(invoice)
            invoice["updated_at"] = self._tick()
            return item

    def rename_client(self, client_id: str, name: str) -> None:
        """Rename a client; bumps the client's `updated_at` (its invoices do not change)."""
        with self.lock:
            client = next(c for c in self.clients if c["id"] == client_id)
            client["name"] = name
            client["updated_at"] = self._tick()

    def create_invoice(self, client_id: str | None, status: str = "open") -> str:
        """A new invoice, created now: it comes first in the listing. Returns its id."""
        with self.lock:
            created = self._now + dt.timedelta(minutes=1)
            rng = random.Random(len(self.invoices))
            invoice = data.make_invoice(
                rng,
                self._ids,
                len(self.invoices) + 1,
                client_id,
                self.invoices[0]["creator"],
                self.invoices[0]["billing_profile"],
                created,
                status,
            )
            invoice["updated_at"] = data.stamp(created)
            self._now = created
            self.invoices.append(invoice)
            return invoice["id"]


def _positive(value: str | None, default: int) -> int | None:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= 1 else default


def paginated(
    rows: list[dict[str, Any]], page: int, per_page: int, path: str, link_base: str, meta_base: str
) -> dict[str, Any]:
    """A Laravel resource collection: `data`, `links`, `meta` (with its `links` window)."""
    total = len(rows)
    last_page = max(1, math.ceil(total / per_page))
    start = (page - 1) * per_page
    chunk = rows[start : start + per_page]

    def link(number: int) -> str:
        return f"{link_base}?page={number}"

    def meta_link(number: int) -> str:
        return f"{meta_base}?page={quote(str(number))}"

    window: list[dict[str, Any]] = [
        {"url": meta_link(page - 1) if page > 1 else None, "label": "« Previous", "active": False}
    ]
    for element in _url_window(page, last_page):
        if element is None:
            window.append({"url": None, "label": "...", "active": False})
        else:
            window.append({"url": meta_link(element), "label": str(element), "active": element == page})
    window.append({"url": meta_link(page + 1) if page < last_page else None, "label": "Next »", "active": False})
    return {
        "data": [data.public(r) for r in chunk],
        "links": {
            "first": link(1),
            "last": link(last_page),
            "prev": link(page - 1) if page > 1 else None,
            "next": link(page + 1) if page < last_page else None,
        },
        "meta": {
            "current_page": page,
            "from": start + 1 if chunk else None,
            "last_page": last_page,
            "links": window,
            "path": path,
            "per_page": per_page,
            "to": start + len(chunk) if chunk else None,
            "total": total,
        },
    }


def _url_window(page: int, last_page: int) -> list[int | None]:
    """Laravel's `UrlWindow`: every page when few, else both ends and a slider, `None` = "..."."""
    if last_page < ON_EACH_SIDE * 2 + 8:
        return list(range(1, last_page + 1))
    window = ON_EACH_SIDE * 2
    if page <= window:
        return [*range(1, window + ON_EACH_SIDE + 1), None, last_page - 1, last_page]
    if page > last_page - window:
        return [1, 2, None, *range(last_page - (window + ON_EACH_SIDE - 1), last_page + 1)]
    return [1, 2, None, *range(page - ON_EACH_SIDE, page + ON_EACH_SIDE + 1), None, last_page - 1, last_page]
