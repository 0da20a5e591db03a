"""The Flow Payroll Billing listings: clients, then each client's invoices, page by page.

docs/providers.md §2.3 [DOC]: `content.data.{invoices[], paginationToken, hasMorePages, pageSize}`;
the token is handed back unchanged and the listing stops when `hasMorePages` is false or the
token is empty. A token that repeats raises `PaginationLoopError` (see `paginate`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from sources.flowpayroll.mapping import Formats, formats_from
from sources.flowpayroll.settings import CLIENT_PAGE_SIZE, INVOICE_PAGE_SIZE
from sources.shared.http import ApiClient
from sources.shared.paginators import TokenPaginator, paginate


def envelope_data(body: Any) -> dict[str, Any]:
    """`content.data` of a success envelope (docs/providers.md §2.5 [DOC]), or an empty dict."""
    content = body.get("content") if isinstance(body, dict) else None
    data = content.get("data") if isinstance(content, dict) else None
    return data if isinstance(data, dict) else {}


def error_message(body: Any) -> str | None:
    """The message of a Flow Payroll error body, whichever documented envelope it uses.

    docs/providers.md §2.5 [DOC]: the envelopes differ between doc pages, so each is accepted —
    the response-format page's `message{text, token, tokenArguments}`, the Billing OpenAPI
    schema's `errors[]{field, reasonText, reasonId}` with `message{text, textId}`, the Pay API's
    `validationIssues[]{field, reason, reasonToken}` and `messageToken` — plus the token
    endpoint's OAuth `error`/`error_description` (RFC 6749).
    """
    if not isinstance(body, dict):
        return None
    parts: list[str] = []
    message = body.get("message")
    if isinstance(message, dict):
        token = message.get("token") or message.get("textId") or body.get("messageToken")
        text = message.get("text")
        parts.append(" ".join(str(p) for p in (f"[{token}]" if token else None, text) if p))
    elif isinstance(message, str):
        parts.append(message)
    for key, reason_keys in (("errors", ("reasonText", "reasonId")), ("validationIssues", ("reason", "reasonToken"))):
        issues = body.get(key)
        if isinstance(issues, list):
            for issue in issues:
                if isinstance(issue, dict):
                    reason = next((issue[k] for k in reason_keys if issue.get(k)), None)
                    field = issue.get("field")
                    parts.append(f"{field}: {reason}" if field else str(reason))
    if body.get("error"):
        parts.append(" ".join(str(p) for p in (body.get("error"), body.get("error_description")) if p))
    text = "; ".join(p for p in parts if p)
    return text or None


def _next_page(body: Any) -> tuple[Any, Any]:
    data = envelope_data(body)
    # docs/providers.md §2.5 [DOC]: the Pay API puts the token under `content.metadata` instead.
    content = body.get("content") if isinstance(body, dict) else None
    metadata = content.get("metadata") if isinstance(content, dict) else None
    token = data.get("paginationToken")
    if token in (None, "") and isinstance(metadata, dict):
        token = metadata.get("paginationToken")
    return token, data.get("hasMorePages")


def _records(key: str) -> Any:
    def extract(body: Any) -> Any:
        return envelope_data(body).get(key)

    return extract


def list_clients(api: ApiClient, page_size: int = CLIENT_PAGE_SIZE) -> Iterator[tuple[dict[str, Any], Formats]]:
    """Yield every client of the organisation with the date formats of its page.

    docs/providers.md §2.2 [INF]: List Clients is assumed to page like the invoice listing; a
    response without a token or `hasMorePages` is read as the only page.
    """
    for page in paginate(api, "/clients", TokenPaginator(page_size, _next_page), _records("clients")):
        formats = formats_from(page.response.data)
        for client in page.items:
            yield client, formats


def list_invoices(
    api: ApiClient, client_id: str, page_size: int = INVOICE_PAGE_SIZE
) -> list[tuple[dict[str, Any], Formats]]:
    """Every invoice of one client, each with the date formats of the page it came in.

    Raises:
        NotFoundError: the client is not (or no longer) in the organisation.
    """
    path = f"/clients/{quote(client_id, safe='')}/invoices"
    invoices: list[tuple[dict[str, Any], Formats]] = []
    for page in paginate(api, path, TokenPaginator(page_size, _next_page), _records("invoices")):
        formats = formats_from(page.response.data)
        invoices.extend((invoice, formats) for invoice in page.items)
    return invoices
