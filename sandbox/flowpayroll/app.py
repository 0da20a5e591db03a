"""The Flow Payroll simulator: OAuth token endpoint plus the Billing service's documented endpoints.

Documented behaviour (docs/providers.md §2, seed 002):
- `POST /oauth2/token` with a form body `grant_type=client_credentials&client_id&client_secret`
  answers `{"access_token", "expires_in", "token_type": "Bearer"}`;
- every Billing call needs the raw token in `X-Auth-Token`: missing, unknown or expired → 401;
- `GET /v1/billing/clients`, `GET /v1/billing/clients/{clientId}`,
  `GET /v1/billing/clients/{clientId}/invoices?paginationToken=&pageSize=`,
  `GET /v1/billing/invoices/{clientId}/{invoiceId}/line-items`,
  `PUT /v1/billing/invoices/{clientId}/{invoiceId}` (400 when the invoice is closed) and `POST …/void`;
- success envelope `{"message", "content": {"data", "metadata": {dateFormat, dateTimeFormat}}}`;
- 404 means not found within the caller's organisation; 429 past the budget.

Where the docs are silent, the most plausible reading (each also named where it is coded):
- error bodies: the gateway's auth and rate-limit errors use the response-format page's
  `message{text, token, tokenArguments}`; the Billing service's 400/404 use the OpenAPI schema's
  `errors[]{field, reasonText, reasonId, reasonParameters}` + `message{text, textId}`;
- the token endpoint answers RFC 6749 errors (`{"error": "invalid_client"}`) with 401/400;
- pagination tokens are random strings the server remembers (opaque, like a DynamoDB key);
  List Clients pages the same way; the default page size is 100 and the maximum 1000 (the
  line-items page's figures); a larger `pageSize` is capped;
- a 429 carries no Retry-After and no rate-limit headers (none are documented);
- there is no status field: a void sets `externalProviderStatus` to Xero's `VOIDED` and the
  balance due to 0; a draft shows `externalProviderStatus` `DRAFT`;
- attachments' `downloadUrl` is pre-signed on every read and expires 15 minutes later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import threading
import time
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from sandbox.flowpayroll.data import KINDS, Generator, now_utc, recompute, void
from sandbox.server import Request, Response, SandboxApp, WindowBudget, json_response

TOKEN_PATH = "/oauth2/token"
API_PREFIX = "/v1/billing"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
DOWNLOAD_URL_LIFETIME = dt.timedelta(minutes=15)

_STRFTIME = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
_FORMAT_TOKEN = re.compile(r"'[^']*'|yyyy|yy|MM|dd|HH|mm|ss|f{1,6}|Z|.")


def render_datetime(value: dt.datetime | dt.date, pattern: str) -> str:
    """Write a date or UTC datetime in a Java/.NET pattern (the subset this sandbox announces)."""
    out: list[str] = []
    for token in _FORMAT_TOKEN.findall(pattern):
        if token.startswith("'") and token.endswith("'") and len(token) > 1:
            out.append(token[1:-1])
        elif token in _STRFTIME:
            out.append(value.strftime(_STRFTIME[token]))
        elif token.startswith("f"):
            micro = value.microsecond if isinstance(value, dt.datetime) else 0
            out.append(f"{micro:06d}"[: len(token)])
        elif token == "Z":
            out.append("Z")
        else:
            out.append(token)
    return "".join(out)


class FlowPayrollSandbox(SandboxApp):
    """A Flow Payroll organisation behind the documented API. See the module docstring."""

    name = "flowpayroll"

    def __init__(
        self,
        *,
        seed: int = 42,
        latency: float = 0.0,
        clients: int = 6,
        invoices_per_client: int = 5,
        client_id: str = "fp-sandbox-client",
        client_secret: str = "fp-sandbox-secret-7c1d",
        expires_in: int = 3600,
        requests_per_minute: int | None = None,
        token_requests_per_minute: int | None = None,
        budget_window: float = 60.0,
        date_format: str = "yyyy-MM-dd",
        datetime_format: str = "yyyy-MM-dd'T'HH:mm:ss.fffZ",
        metadata_at: str = "both",
        expire_tokens_after: int | None = None,
        repeat_token: bool = False,
    ) -> None:
        super().__init__(latency=latency)
        self.client_id, self.client_secret = client_id, client_secret
        self.expires_in = expires_in
        self.budget = WindowBudget(requests_per_minute, budget_window)
        self.token_budget = WindowBudget(token_requests_per_minute, budget_window)
        self.date_format, self.datetime_format = date_format, datetime_format
        self.metadata_at = metadata_at
        self.expire_tokens_after = expire_tokens_after
        self.repeat_token = repeat_token
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.api_requests = 0
        self._pages: dict[str, tuple[str, int]] = {}
        self._counter_lock = threading.Lock()

        gen = Generator(seed)
        self._gen = gen
        self.organisation_id = "org_" + gen.uid().replace("-", "")[:20]
        self.clients: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.organisations_other: dict[str, dict[str, Any]] = {}
        seeded = 0
        for index in range(clients):
            client = gen.client(self.organisation_id, index)
            self.clients[client["id"]] = client
            # The last client of three or more has no invoices: every client is loaded regardless.
            count = 0 if clients >= 3 and index == clients - 1 else invoices_per_client
            for _ in range(count):
                kind = (
                    KINDS[seeded]
                    if seeded < len(KINDS)
                    else gen.rng.choice(("paid", "paid", "open", "open", "part_paid", "credited", "voided"))
                )
                invoice = gen.invoice(client, kind)
                self.invoices[invoice["id"]] = invoice
                seeded += 1
        # Another organisation's client: its id is real but not within ours, so it answers 404.
        other = gen.client("org_other", 99)
        self.organisations_other[other["id"]] = other

    # --- test hooks ---------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Expire every token issued so far, as if their lifetime had run out."""
        with self.lock:
            for token in self.tokens:
                self.tokens[token] = 0.0

    def update_invoice(self, invoice_id: str, **fields: Any) -> dict[str, Any]:
        """Change top-level fields of an invoice (reference, dueDate...); bumps `updatedDate`."""
        with self.lock:
            invoice = self.invoices[invoice_id]
            invoice.update(fields)
            recompute(invoice)
            self._touch(invoice)
            return invoice

    def update_line(
        self,
        invoice_id: str,
        index: int,
        *,
        quantity: Decimal | None = None,
        unit_amount: Decimal | None = None,
    ) -> dict[str, Any]:
        """Change one line's quantity or rate; totals, tax and balance follow."""
        with self.lock:
            invoice = self.invoices[invoice_id]
            line = invoice["lineItems"][index]
            if quantity is not None:
                line.update(quantity=quantity, units=quantity, chargeUnits=quantity)
            if unit_amount is not None:
                line.update(unitAmount=unit_amount, chargeRate=unit_amount)
            amount = (line["quantity"] * line["unitAmount"]).quantize(Decimal("0.01"))
            rate = (line["taxAmount"] / line["lineAmount"]) if line["lineAmount"] else Decimal(0)
            line.update(
                lineAmount=amount,
                amount=amount,
                chargeValue=amount,
                taxAmount=(amount * rate).quantize(Decimal("0.01")),
            )
            recompute(invoice)
            self._touch(invoice)
            return invoice

    def remove_line(self, invoice_id: str, index: int) -> dict[str, Any]:
        """Delete one line of an invoice; totals and balance follow."""
        with self.lock:
            invoice = self.invoices[invoice_id]
            del invoice["lineItems"][index]
            recompute(invoice)
            self._touch(invoice)
            return invoice

    def record_payment(self, invoice_id: str, amount: Decimal) -> dict[str, Any]:
        """Apply a payment; the balance due drops (to 0 when paid in full)."""
        with self.lock:
            invoice = self.invoices[invoice_id]
            invoice["_paid"] += amount
            recompute(invoice)
            self._touch(invoice)
            return invoice

    def void_invoice(self, invoice_id: str) -> dict[str, Any]:
        """Void an invoice, as `POST /invoices/{clientId}/{invoiceId}/void` does."""
        with self.lock:
            invoice = self.invoices[invoice_id]
            void(invoice)
            self._touch(invoice)
            return invoice

    def add_invoice(self, client_id: str, kind: str = "open") -> dict[str, Any]:
        """Raise a new invoice for a client."""
        with self.lock:
            invoice = self._gen.invoice(self.clients[client_id], kind)
            invoice["createdDate"] = now_utc()
            self.invoices[invoice["id"]] = invoice
            self._touch(invoice)
            return invoice

    def invoices_of(self, client_id: str) -> list[dict[str, Any]]:
        """The client's invoices in listing order."""
        return [i for i in self.invoices.values() if i["clientId"] == client_id]

    def _touch(self, invoice: dict[str, Any]) -> None:
        now = now_utc()
        previous = invoice["updatedDate"]
        invoice["updatedDate"] = now if now > previous else previous + dt.timedelta(milliseconds=1)
        invoice["updatedBy"] = "api@flowpayroll.example"

    # --- SandboxApp -----------------------------------------------------------------------------

    def pipeline_env(self, base_url: str) -> dict[str, str]:
        return {
            "SOURCES__FLOWPAYROLL__CLIENT_ID": self.client_id,
            "SOURCES__FLOWPAYROLL__CLIENT_SECRET": self.client_secret,
            "SOURCES__FLOWPAYROLL__BASE_URL": f"{base_url}{API_PREFIX}",
            "SOURCES__FLOWPAYROLL__TOKEN_URL": f"{base_url}{TOKEN_PATH}",
        }

    def summary(self) -> dict[str, Any]:
        with self.lock:
            totals: dict[str, Decimal] = {}
            for invoice in self.invoices.values():
                code = invoice["currencyCode"]
                totals[code] = totals.get(code, Decimal(0)) + invoice["amount"]
            return {
                "clients": len(self.clients),
                "invoices": len(self.invoices),
                "lines": sum(len(i["lineItems"]) for i in self.invoices.values()),
                "totals": dict(sorted(totals.items())),
            }

    def handle(self, request: Request) -> Response:
        if request.path == TOKEN_PATH:
            return self._token(request)
        if not request.path.startswith(API_PREFIX + "/"):
            return _gateway_error(404, "Resource not found", "resourceNotFound")
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        if self.budget.check(self.organisation_id) is not None:
            # docs/providers.md §2.5 [DOC]: 429, and no rate-limit headers or Retry-After documented.
            return _gateway_error(429, "Too many requests", "tooManyRequests")
        parts = [unquote(p) for p in request.path[len(API_PREFIX) + 1 :].split("/")]
        with self.lock:
            return self._route(request, parts)

    # --- endpoints ----------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        if request.method != "POST":
            return json_response({"error": "invalid_request"}, 405)
        if self.token_budget.check("token") is not None:
            return _gateway_error(429, "Too many requests", "tooManyRequests")
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return json_response({"error": "invalid_request", "error_description": "form body expected"}, 400)
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return json_response({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.expires_in
            self.tokens_issued += 1
        return json_response({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})

    def _authenticate(self, request: Request) -> Response | None:
        token = request.headers.get("x-auth-token")
        with self.lock:
            self.api_requests += 1
            if self.api_requests == self.expire_tokens_after:
                self.expire_tokens()
            expiry = self.tokens.get(token or "")
        if not token:
            return _gateway_error(401, "Authentication token is missing", "authTokenMissing")
        if expiry is None:
            return _gateway_error(401, "Authentication token is invalid", "authTokenInvalid")
        if time.monotonic() >= expiry:
            return _gateway_error(401, "Authentication token has expired", "authTokenExpired")
        return None

    def _route(self, request: Request, parts: list[str]) -> Response:
        method = request.method
        if parts == ["clients"] and method == "GET":
            return self._page(request, "clients", "clients", list(self.clients.values()))
        if len(parts) == 2 and parts[0] == "clients" and method == "GET":
            client = self._client(parts[1])
            if client is None:
                return _not_found("clientId", parts[1], "Client")
            return self._ok({"client": self._client_detail(client)})
        if len(parts) == 3 and parts[0] == "clients" and parts[2] == "invoices" and method == "GET":
            if self._client(parts[1]) is None:
                return _not_found("clientId", parts[1], "Client")
            return self._page(request, f"invoices:{parts[1]}", "invoices", self.invoices_of(parts[1]))
        if len(parts) >= 3 and parts[0] == "invoices":
            invoice = self.invoices.get(parts[2])
            if self._client(parts[1]) is None or invoice is None or invoice["clientId"] != parts[1]:
                return _not_found("invoiceId", parts[2], "Invoice")
            if len(parts) == 4 and parts[3] == "line-items" and method == "GET":
                return self._page(request, f"lines:{parts[2]}", "lineItems", invoice["lineItems"])
            if len(parts) == 4 and parts[3] == "void" and method == "POST":
                self.void_invoice(invoice["id"])
                return self._ok({"invoice": invoice})
            if len(parts) == 3 and method == "PUT":
                return self._update(request, invoice)
        return _gateway_error(404, "Resource not found", "resourceNotFound")

    def _update(self, request: Request, invoice: dict[str, Any]) -> Response:
        # "Update open invoice": 400 when the invoice is closed (paid or voided).
        if invoice["balanceDue"] == 0 or invoice.get("externalProviderStatus") == "VOIDED":
            return _billing_error(
                400, "invoiceId", "Invoice is closed and cannot be updated", "invoiceClosed", invoice["id"]
            )
        body = request.json() or {}
        changes = {k: body[k] for k in ("reference",) if k in body}
        self.update_invoice(invoice["id"], **changes)
        return self._ok({"invoice": invoice})

    def _client(self, client_id: str) -> dict[str, Any] | None:
        return self.clients.get(client_id)

    def _client_detail(self, client: dict[str, Any]) -> dict[str, Any]:
        detail = dict(client)
        detail["financeSettings"] = {
            "defaultRevenueAccount": "200",
            "defaultTaxRate": "OUTPUT2",
            "payElementMappings": [],
            "defaultDueDateDays": 30,
            "defaultCurrencyCode": client["_currency"],
            "defaultLineAmountTypes": "Exclusive",
            "invoiceTemplateOverride": None,
        }
        return detail

    def _page(self, request: Request, scope: str, key: str, records: list[dict[str, Any]]) -> Response:
        size_text = request.arg("pageSize")
        try:
            size = int(size_text) if size_text not in (None, "") else DEFAULT_PAGE_SIZE
        except ValueError:
            return _billing_error(400, "pageSize", "pageSize must be an integer", "invalidPageSize", size_text)
        if size < 1:
            return _billing_error(400, "pageSize", "pageSize must be positive", "invalidPageSize", size_text)
        size = min(size, MAX_PAGE_SIZE)
        token = request.arg("paginationToken")
        offset = 0
        if token:
            remembered = self._pages.get(token)
            if remembered is None or remembered[0] != scope:
                return _billing_error(
                    400,
                    "paginationToken",
                    "The pagination token is not valid",
                    "invalidPaginationToken",
                    token,
                )
            offset = remembered[1]
        chunk = records[offset : offset + size]
        more = offset + size < len(records)
        next_token = None
        if more:
            next_token = token if (self.repeat_token and token) else secrets.token_urlsafe(24)
            self._pages[next_token] = (scope, offset + size)
        return self._ok({key: chunk, "paginationToken": next_token, "hasMorePages": more, "pageSize": size})

    def _ok(self, data: dict[str, Any]) -> Response:
        metadata = {"dateFormat": self.date_format, "dateTimeFormat": self.datetime_format}
        content: dict[str, Any] = {"data": self._render(data)}
        body: dict[str, Any] = {
            "message": {"text": "Operation succeeded", "token": "operationSucceeded"},
            "content": content,
        }
        if self.metadata_at in ("content", "both"):
            content["metadata"] = metadata
        if self.metadata_at in ("top", "both"):
            body["metadata"] = metadata
        return json_response(body)

    def _render(self, value: Any) -> Any:
        if isinstance(value, dict):
            rendered = {k: self._render(v) for k, v in value.items() if not k.startswith("_")}
            if "s3Key" in value and "fileSize" in value:
                rendered.update(self._signed_url(value["s3Key"]))
            return rendered
        if isinstance(value, list):
            return [self._render(v) for v in value]
        if isinstance(value, dt.datetime):
            return render_datetime(value.astimezone(dt.UTC), self.datetime_format)
        if isinstance(value, dt.date):
            return render_datetime(value, self.date_format)
        return value

    def _signed_url(self, key: str) -> dict[str, Any]:
        expires = now_utc() + DOWNLOAD_URL_LIFETIME
        signature = hashlib.sha256(f"{key}{expires.isoformat()}".encode()).hexdigest()
        url = (
            f"https://flowpayroll-billing-attachments.s3.eu-west-2.amazonaws.com/{key}"
            f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=900&X-Amz-Signature={signature}"
        )
        return {"downloadUrl": url, "downloadUrlExpiresAt": render_datetime(expires, self.datetime_format)}


def _gateway_error(status: int, text: str, token: str) -> Response:
    """The response-format page's error envelope (docs/providers.md §2.5 [DOC])."""
    return json_response({"message": {"text": text, "token": token, "tokenArguments": []}}, status)


def _billing_error(status: int, field: str, text: str, reason_id: str, value: Any) -> Response:
    """The Billing OpenAPI schema's error envelope (seed 002)."""
    return json_response(
        {
            "content": None,
            "metadata": None,
            "errors": [
                {
                    "field": field,
                    "reasonText": text,
                    "reasonId": reason_id,
                    "reasonParameters": [{"key": field, "value": str(value)}],
                }
            ],
            "message": {"text": text, "textId": reason_id, "textParameters": []},
        },
        status,
    )


def _not_found(field: str, value: str, what: str) -> Response:
    return _billing_error(404, field, f"{what} not found", f"{what.lower()}NotFound", value)
