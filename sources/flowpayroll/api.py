"""The Flow Payroll Billing API as the shared driver reads it (docs/providers.md §2)."""

from __future__ import annotations

from typing import Any

from sources.flowpayroll import mapping
from sources.flowpayroll.settings import (
    CLIENT_ID,
    CLIENT_PAGE_SIZE,
    CLIENT_SECRET,
    DEFAULT_CONCURRENCY,
    DEFAULT_PAGE_SIZE,
    DEFAULT_TOKEN_LIFETIME,
    NAME,
    TOKEN_RENEW_FRACTION,
)
from sources.shared.declaration import Api, ClientCredentials, Context, Listing, Mappers, Token, UpdatedAt
from sources.shared.model import MappedInvoice
from sources.shared.values import to_text


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


# docs/providers.md §2.3 [DOC]: `content.data.{invoices[], paginationToken, hasMorePages, pageSize}`;
# the token is handed back unchanged. §2.5 [DOC]: the Pay API puts it under `content.metadata`.
PAGING = Token(
    token_param="paginationToken",
    size_param="pageSize",
    token_paths=("content.data.paginationToken", "content.metadata.paginationToken"),
    has_more_path="content.data.hasMorePages",
)


def _invoice(record: Any, ctx: Context) -> MappedInvoice:
    # docs/providers.md §2.3 [DOC]: an invoice carries its client's id; the name comes from the
    # clients listing. Dates follow the formats announced on the invoice's own page (§2.5).
    client_name = ctx.client_names.get(to_text(record.get("clientId")) or "")
    return mapping.map_invoice(record, account=ctx.account, client_name=client_name, formats=ctx.page)


API = Api(
    provider=NAME,
    # docs/providers.md §2.1 [DOC]: OAuth 2.0 client credentials; the token goes raw in X-Auth-Token.
    auth=ClientCredentials(
        CLIENT_ID,
        CLIENT_SECRET,
        header="X-Auth-Token",
        scheme=None,
        default_lifetime=DEFAULT_TOKEN_LIFETIME,
        renew_fraction=TOKEN_RENEW_FRACTION,
    ),
    error_message=error_message,
    auth_help="and token_url for the environment the credentials belong to",
    concurrency=DEFAULT_CONCURRENCY,
    clients=Listing(
        "/clients",
        records="content.data.clients",
        paging=PAGING,
        page_size=CLIENT_PAGE_SIZE,
        page_context=mapping.formats_from,
        restore_context=lambda kept: mapping.Formats(**kept),
        cursor=UpdatedAt("client_updated_at"),
    ),
    invoices=Listing(
        # docs/providers.md §2.3 [DOC]: invoices are listed per client only.
        "/clients/{client_id}/invoices",
        records="content.data.invoices",
        paging=PAGING,
        page_size=DEFAULT_PAGE_SIZE,
        page_context=mapping.formats_from,
        restore_context=lambda kept: mapping.Formats(**kept),
        # docs/providers.md §2.3 [DOC]: no server-side filter; `updatedDate` decides what is written.
        cursor=UpdatedAt("updated_at"),
    ),
    mapping=Mappers(
        lines=mapping.LINES,
        reads=mapping.READS,
        client=lambda record, ctx: mapping.map_client(record, account=ctx.account, formats=ctx.page),
        invoice=_invoice,
        invoice_updated_at=lambda record, ctx: mapping.parse_timestamp(
            record.get("updatedDate"), ctx.page, field="updatedDate"
        ),
        invoice_client=lambda record: to_text(record.get("clientId")),
        # docs/providers.md §2.2 [DOC]: records carry their `organisationId`.
        account_from=mapping.organisation_of,
    ),
)
