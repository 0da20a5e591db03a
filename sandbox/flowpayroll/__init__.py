"""Flow Payroll (docs/providers.md §2): an OAuth 2.0 token endpoint and the Billing service.

Routes: `POST /oauth2/token`, and under `/v1/billing`: `GET /clients`, `GET /clients/{clientId}`,
`GET /clients/{clientId}/invoices`, `GET /invoices/{clientId}/{invoiceId}/line-items`,
`PUT /invoices/{clientId}/{invoiceId}` and `POST /invoices/{clientId}/{invoiceId}/void`.

Where the docs are silent, the most plausible reading (each also named where it is coded):
error bodies (the gateway's `message{text, token, tokenArguments}` for auth and rate limit, the
OpenAPI `errors[]` + `message{text, textId}` for the Billing service's 400/404); RFC 6749 errors
on the token endpoint; opaque page tokens the server remembers, default page size 100, maximum
1000 (the line-items page's figures, a larger `pageSize` is capped); no status field (a void sets
`externalProviderStatus` to Xero's `VOIDED`); attachments' `downloadUrl` pre-signed on every read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from sandbox import framework
from sandbox.flowpayroll.data import KINDS, Generator, last_day, now_utc, recompute, void
from sandbox.framework import App, ClientCredentials, Refused, Request, Response, SlidingWindow, apply_now, route

TOKEN_PATH = "/oauth2/token"
API = "/v1/billing"
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000  # §2.3 (the line-items page's figures) [INF for clients]
DOWNLOAD_URL_LIFETIME = dt.timedelta(minutes=15)
_STRFTIME = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
_FORMAT_TOKEN = re.compile(r"'[^']*'|yyyy|yy|MM|dd|HH|mm|ss|f{1,6}|Z|.")


def render_datetime(value: dt.datetime | dt.date, pattern: str) -> str:
    """Write a date or UTC datetime in a Java/.NET pattern (the subset this sandbox announces)."""

    def one(token: str) -> str:
        if token in _STRFTIME:
            return value.strftime(_STRFTIME[token])
        if token.startswith("f"):  # fractions of a second
            return f"{value.microsecond if isinstance(value, dt.datetime) else 0:06d}"[: len(token)]
        return token[1:-1] if len(token) > 1 and token.startswith("'") else token  # 'quoted' text as it is

    return "".join(one(token) for token in _FORMAT_TOKEN.findall(pattern))


def _gateway_error(status: int, text: str, token: str) -> Response:
    """The response-format page's error envelope (§2.5 [DOC])."""
    return framework.json_response({"message": {"text": text, "token": token, "tokenArguments": []}}, status)


def _billing_error(status: int, field: str, text: str, reason_id: str, value: Any) -> Refused:
    """The Billing OpenAPI schema's error envelope (§2.5, seed 002), to raise."""
    parameters = [{"key": field, "value": str(value)}]
    error = {"field": field, "reasonText": text, "reasonId": reason_id, "reasonParameters": parameters}
    message = {"text": text, "textId": reason_id, "textParameters": []}
    body = {"content": None, "metadata": None, "errors": [error], "message": message}
    return Refused(framework.json_response(body, status))


def _not_found(field: str, value: str, what: str) -> Refused:
    return _billing_error(404, field, f"{what} not found", f"{what.lower()}NotFound", value)


@dataclass(kw_only=True)
class Options(framework.Options):
    clients: int = 6  # data size (the last of three or more clients has no invoice)
    invoices_per_client: int = 5
    client_id: str = "fp-sandbox-client"  # the valid credentials
    client_secret: str = "fp-sandbox-secret-7c1d"
    expires_in: int = 3600  # token lifetime in seconds
    token_requests_per_minute: int | None = None  # the token endpoint's budget (`requests_per_minute`: the API's)
    budget_window: float = 60.0  # both budgets' window, in seconds
    date_format: str = "yyyy-MM-dd"  # the announced patterns
    datetime_format: str = "yyyy-MM-dd'T'HH:mm:ss.fffZ"
    metadata_at: str = "both"  # where `metadata` sits: `content`, `top` or `both` (see `_ok`)
    expire_tokens_after: int | None = None  # expire every token issued so far at the N-th API call
    repeat_token: bool = False  # a faulty server that repeats its page token


class FlowPayrollSandbox(App):
    """A Flow Payroll organisation behind the documented API (`create_app`); `fixtures`: the published
    example as the one invoice of one more client."""

    name = "flowpayroll"

    def __init__(self, **options: Any) -> None:
        o = self.options = Options(**options)
        super().__init__(latency=o.latency)
        self.client_id, self.client_secret, self.api_requests = o.client_id, o.client_secret, 0
        # §2.1: client credentials; the raw token (no scheme) goes in `X-Auth-Token`
        self.oauth = ClientCredentials(o.client_id, o.client_secret, o.expires_in, "X-Auth-Token")
        self.budget = SlidingWindow(o.requests_per_minute, o.budget_window)
        self.token_budget = SlidingWindow(o.token_requests_per_minute, o.budget_window)
        self.pager = framework.TokenPager(repeat=o.repeat_token)
        self._generate(Generator(o.seed))
        if o.today is not None:
            published = self.published
            last = last_day([*self.clients.values(), *(i for i in self.invoices.values() if i["id"] not in published)])
            if last is not None:  # the same organisation again, shifted so that its last day is the day before
                self._generate(Generator(o.seed, framework.days_until(o.today, last + dt.timedelta(days=1))))

    def _generate(self, gen: Generator) -> None:
        """The organisation `gen` makes: its clients, their invoices, the published one's client, another's client."""
        o, self._gen = self.options, gen
        self.organisation_id = "org_" + gen.uid().replace("-", "")[:20]
        self.clients: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.gone: set[str] = set()  # deleted clients still listed
        for index in range(o.clients):
            client = _put(self.clients, gen.client(self.organisation_id, index))
            # The last client of three or more has no invoices: every client is loaded regardless.
            for _ in range(0 if o.clients >= 3 and index == o.clients - 1 else o.invoices_per_client):
                kinds = ("paid", "paid", "open", "open", "part_paid", "credited", "voided")
                kind = KINDS[seeded] if (seeded := len(self.invoices)) < len(KINDS) else gen.rng.choice(kinds)
                _put(self.invoices, gen.invoice(client, kind))
        self.published: set[str] = set()  # invoices served as published: never recomputed
        if o.fixtures:
            client = _put(self.clients, gen.client(self.organisation_id, o.clients))
            self.published.add(_put(self.invoices, self._published_invoice(client))["id"])
        # Another organisation's client: its id is real but not within ours, so it answers 404 (§2.5).
        self.organisations_other = {c["id"]: c for c in [gen.client("org_other", 99)]}

    def _published_invoice(self, client: dict[str, Any]) -> dict[str, Any]:
        """The published skeleton (`sandbox/flowpayroll/samples/`, `"<string>"`/123) as published, but its
        placeholders of a documented form (ids, dates, currency, `AUTHORISED`) hold a value of that form,
        as `tests/flowpayroll/test_mapping.py` reads it; its figures do not add up (123 + 123 ≠ 123)."""
        sample = framework.published_sample(self.name, "list_invoices_for_client.json")
        [invoice] = sample["content"]["data"]["invoices"]
        moment, invoice_id = dt.datetime(2023, 11, 7, 5, 31, 56, 250_000, dt.UTC), self._gen.uid()
        known = {"clientId": client["id"], "organisationId": self.organisation_id, "currencyCode": "GBP"}
        known |= {"externalProviderStatus": "AUTHORISED", "invoiceId": invoice_id}
        known |= dict.fromkeys(("date", "dueDate", "appliedDate"), dt.date(2023, 11, 7))

        def fill(value: Any, key: str = "") -> Any:
            if isinstance(value, dict):
                return {k: fill(v, k) for k, v in value.items()}
            if isinstance(value, list):
                return [fill(v, key) for v in value]
            if value != "<string>":
                return value
            if key in known:
                return known[key]
            if key == "id" or key.endswith("Id"):
                return self._gen.uid()
            return moment if key.endswith(("Date", "At")) else value

        return {**fill(invoice), "id": invoice_id}

    @property
    def tokens_issued(self) -> int:
        return self.oauth.issued

    def expire_tokens(self) -> None:
        """Expire every token issued so far, as if their lifetime had run out."""
        self.oauth.expire_all()

    # --- HTTP ---------------------------------------------------------------------------------
    def guard(self, request: Request, route: Any) -> Response | None:
        if request.path == TOKEN_PATH:
            if request.method == "POST" and self.token_budget.check("token") is not None:
                return _gateway_error(429, "Too many requests", "tooManyRequests")
            return self.oauth.token_endpoint(request)
        if not request.path.startswith(API + "/"):
            return _gateway_error(404, "Resource not found", "resourceNotFound")
        with self.lock:
            self.api_requests += 1
            if self.api_requests == self.options.expire_tokens_after:
                self.expire_tokens()
        refused = self.oauth.check(request)  # §2.5: 401 missing, unknown or expired
        if refused != "ok":
            text = {"missing": "is missing", "invalid": "is invalid", "expired": "has expired"}[refused]
            return _gateway_error(401, f"Authentication token {text}", f"authToken{refused.title()}")
        if self.budget.check(self.organisation_id) is not None:
            return _gateway_error(429, "Too many requests", "tooManyRequests")  # §2.5: no Retry-After
        return None

    def not_found(self, request: Request) -> Response:
        parts = request.path[len(API) + 1 :].split("/")
        if len(parts) >= 3 and parts[0] == "invoices":
            try:
                self._invoice(parts[1], parts[2])
            except Refused as refusal:
                return refusal.response
        return _gateway_error(404, "Resource not found", "resourceNotFound")

    def _client(self, client_id: str) -> dict[str, Any]:
        client = None if unquote(client_id) in self.gone else self.clients.get(unquote(client_id))
        if client is None:
            raise _not_found("clientId", unquote(client_id), "Client")
        return client

    def _invoice(self, client_id: str, invoice_id: str) -> dict[str, Any]:
        client_id, invoice_id = unquote(client_id), unquote(invoice_id)
        invoice = self.invoices.get(invoice_id)
        known = client_id not in self.gone and client_id in self.clients
        if not known or invoice is None or invoice["clientId"] != client_id:
            raise _not_found("invoiceId", invoice_id, "Invoice")
        return invoice

    @route("GET", API + "/clients")
    def list_clients(self, request: Request) -> Response:
        return self._page(request, "clients", "clients", list(self.clients.values()))

    @route("GET", API + "/clients/{client_id}")
    def show_client(self, request: Request, client_id: str) -> Response:
        client = self._client(client_id)
        settings = {
            "defaultRevenueAccount": "200", "defaultTaxRate": "OUTPUT2", "payElementMappings": [],
            "defaultDueDateDays": 30, "defaultCurrencyCode": client["_currency"], "defaultLineAmountTypes": "Exclusive",
            "invoiceTemplateOverride": None,
        }  # fmt: skip
        return self._ok({"client": {**client, "financeSettings": settings}})

    @route("GET", API + "/clients/{client_id}/invoices")
    def list_invoices(self, request: Request, client_id: str) -> Response:
        client_id = self._client(client_id)["id"]
        return self._page(request, f"invoices:{client_id}", "invoices", self.invoices_of(client_id))

    @route("GET", API + "/invoices/{client_id}/{invoice_id}/line-items")
    def list_lines(self, request: Request, client_id: str, invoice_id: str) -> Response:
        invoice = self._invoice(client_id, invoice_id)
        return self._page(request, f"lines:{invoice['id']}", "lineItems", invoice["lineItems"])

    @route("POST", API + "/invoices/{client_id}/{invoice_id}/void")
    def void(self, request: Request, client_id: str, invoice_id: str) -> Response:
        invoice = self._invoice(client_id, invoice_id)
        self.update_invoice(invoice["id"], externalProviderStatus="VOIDED")
        return self._ok({"invoice": invoice})

    @route("PUT", API + "/invoices/{client_id}/{invoice_id}")
    def update(self, request: Request, client_id: str, invoice_id: str) -> Response:
        invoice = self._invoice(client_id, invoice_id)
        # "Update open invoice" (§2.4): 400 when the invoice is closed (paid or voided).
        if invoice["balanceDue"] == 0 or invoice.get("externalProviderStatus") == "VOIDED":
            text = "Invoice is closed and cannot be updated"
            raise _billing_error(400, "invoiceId", text, "invoiceClosed", invoice["id"])
        body = request.json() or {}
        self.update_invoice(invoice["id"], **{k: body[k] for k in ("reference",) if k in body})
        return self._ok({"invoice": invoice})

    def _page(self, request: Request, scope: str, key: str, records: list[dict[str, Any]]) -> Response:
        text, token = request.arg("pageSize"), request.arg("paginationToken")
        try:
            size = request.int_arg("pageSize", DEFAULT_PAGE_SIZE)
        except ValueError:
            raise _billing_error(400, "pageSize", "pageSize must be an integer", "invalidPageSize", text) from None
        if size < 1:
            raise _billing_error(400, "pageSize", "pageSize must be positive", "invalidPageSize", text)
        size = min(size, MAX_PAGE_SIZE)
        try:
            chunk, next_token = self.pager.page(scope, records, token, size)
        except KeyError:
            text = "The pagination token is not valid"
            raise _billing_error(400, "paginationToken", text, "invalidPaginationToken", token) from None
        more = next_token is not None
        return self._ok({key: chunk, "paginationToken": next_token, "hasMorePages": more, "pageSize": size})

    def _ok(self, data: dict[str, Any]) -> Response:
        """§2.4: `{"message", "content": {"data", "metadata"}}`; `metadata_at`: `content`, `top` or `both`."""
        o = self.options
        metadata = {"dateFormat": o.date_format, "dateTimeFormat": o.datetime_format}
        content: dict[str, Any] = {"data": framework.public(data, self._render)}
        body = {"message": {"text": "Operation succeeded", "token": "operationSucceeded"}, "content": content}
        if o.metadata_at in ("content", "both"):
            content["metadata"] = metadata
        if o.metadata_at in ("top", "both"):
            body["metadata"] = metadata
        return framework.json_response(body)

    def _render(self, value: Any) -> Any:
        if isinstance(value, dict) and "s3Key" in value and "fileSize" in value:
            return {**value, **self._signed_url(value["s3Key"])}
        if isinstance(value, dt.datetime):
            return render_datetime(value.astimezone(dt.UTC), self.options.datetime_format)
        if isinstance(value, dt.date):
            return render_datetime(value, self.options.date_format)
        return value

    def _signed_url(self, key: str) -> dict[str, Any]:
        """Attachments' `downloadUrl` is pre-signed on every read and expires 15 minutes later [INF]."""
        expires = now_utc() + DOWNLOAD_URL_LIFETIME
        signature = hashlib.sha256(f"{key}{expires.isoformat()}".encode()).hexdigest()
        url = (
            f"https://flowpayroll-billing-attachments.s3.eu-west-2.amazonaws.com/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        )
        url += f"&X-Amz-Expires=900&X-Amz-Signature={signature}"
        return {"downloadUrl": url, "downloadUrlExpiresAt": render_datetime(expires, self.options.datetime_format)}

    # --- configuration, summary, mutations ----------------------------------------------------
    def config(self, base_url: str) -> dict[str, str | None]:
        urls = {"base_url": f"{base_url}{API}", "token_url": f"{base_url}{TOKEN_PATH}"}
        return {"client_id": self.client_id, "client_secret": self.client_secret, **urls}

    def summary_figures(self) -> tuple[int, list[tuple[str | None, Decimal, int]]]:
        invoices = self.invoices.values()
        return len(self.clients), [(i["currencyCode"], i["amount"], len(i["lineItems"])) for i in invoices]

    def invoices_of(self, client_id: str) -> list[dict[str, Any]]:
        """The client's invoices in listing order."""
        return [i for i in self.invoices.values() if i["clientId"] == client_id]

    def _changed(self, record: dict[str, Any], voided: bool = False) -> None:
        """Totals and balance follow (not the published invoice's), `voided` voids; `updatedDate` moves."""
        if "lineItems" in record and record["id"] not in self.published:
            recompute(record)
        if voided:
            void(record)
        now, previous = now_utc(), record["updatedDate"]
        record["updatedDate"] = now if now > previous else previous + dt.timedelta(milliseconds=1)
        record["updatedBy"] = "api@flowpayroll.example"

    def update_invoice(self, invoice_id: str, **fields: Any) -> None:
        """Top-level fields (`_paid` for payments...); `externalProviderStatus="VOIDED"` voids as `POST …/void`."""
        invoice = self.invoices[invoice_id]
        invoice.update(apply_now(fields, now_utc()))
        self._changed(invoice, voided=fields.get("externalProviderStatus") == "VOIDED")

    def remove_line(self, invoice_id: str, index: int = -1) -> dict[str, Any]:
        removed = self.invoices[invoice_id]["lineItems"].pop(index)
        self._changed(self.invoices[invoice_id])
        return removed

    def delete_invoice(self, invoice_id: str) -> None:
        del self.invoices[invoice_id]

    def add_invoice(self, client_id: Any = None, *, kind: str = "open", **fields: Any) -> str:
        """A new invoice in one of the seeded states (`KINDS`), created now."""
        invoice = self._gen.invoice(self.clients[client_id], kind)
        invoice["createdDate"] = now_utc()
        self.invoices[invoice["id"]] = invoice
        self.update_invoice(invoice["id"], **fields)
        return str(invoice["id"])

    def update_client(self, client_id: str, **fields: Any) -> None:
        self.clients[client_id].update(apply_now(fields, now_utc()))
        self._changed(self.clients[client_id])

    def delete_client(self, client_id: str, *, listed: bool = False) -> None:
        for invoice in self.invoices_of(client_id):
            del self.invoices[invoice["id"]]
        if listed:
            self.gone.add(client_id)
        else:
            del self.clients[client_id]

    def add_client(self, **fields: Any) -> str:
        client = self._gen.client(self.organisation_id, len(self.clients))
        self.clients[client["id"]] = {**client, **fields}
        return str(client["id"])


def _put(table: dict[str, dict[str, Any]], record: dict[str, Any]) -> dict[str, Any]:
    """`record`, kept in `table` under its id."""
    table[record["id"]] = record
    return record


create_app = FlowPayrollSandbox


def bench_options(clients: int) -> dict[str, Any]:
    """`create_app` options of an account of `clients` clients for the benchmarks (benchmarks/rerun.py)."""
    return {"clients": clients, "invoices_per_client": 20}
