"""InvoiceXpress: every client's billing documents, as canonical invoices, lines and clients."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import dlt
import httpx

from sources.invoicexpress.api import API
from sources.invoicexpress.settings import (
    ARCHIVED_BOTH,
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_PAGE_SIZE,
    DEFAULT_REQUESTS_PER_MINUTE,
    NAME,
    TITLE,
)
from sources.shared.driver import Account, billing_resource, require
from sources.shared.provider import Provider


@dlt.source(name=NAME, section=NAME)
def invoicexpress(
    account_name: str = dlt.config.value,
    api_key: str = dlt.secrets.value,
    base_url: str | None = None,
    client_ids: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    document_types: Sequence[str] | None = None,
    archived: Sequence[str] | None = None,
    per_page: int = DEFAULT_PAGE_SIZE,
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE,
    concurrency: int = DEFAULT_CONCURRENCY,
    transport: httpx.BaseTransport | None = None,
) -> Any:
    """Load an InvoiceXpress account's clients and every client's documents.

    Lists clients with `GET /clients.json`, then each client's documents with
    `POST /clients/{client_id}/invoices.json` (several clients in flight at once, within the
    account's request budget), and maps them to the canonical `clients`, `invoices` and
    `invoice_items` tables. The API has no change filter, so every run re-reads every client
    and merges: unchanged documents are rewritten with identical values, changed ones (a new
    status, a removed line) show their current state.

    Args:
        account_name: the account subdomain (`acme` in `acme.app.invoicexpress.com`); also the
            value of the `account` column.
        api_key: the API key (secret). It travels in the query string and is redacted from
            every log line, error and trace.
        base_url: the API root; default `https://{account_name}.app.invoicexpress.com`.
        client_ids: load only these clients (ids as text).
        statuses: the `filter.status` list sent to the API; default: every status.
        document_types: the `filter.by_type` list (`Invoice`, `CreditNote`, ...); default: all.
        archived: the `filter.archived` list; default both `archived` and `non_archived`.
        per_page: page size asked for; the size actually served is read back.
        requests_per_minute: proactive budget (documented limit: 780 per account).
        concurrency: clients whose documents are listed in parallel.
        transport: an httpx transport for every request (tests serve a sandbox in-process).
    """
    label = require(NAME, None, account_name, "account_name")
    document_filter: dict[str, list[str]] = {"archived": list(archived or ARCHIVED_BOTH)}
    if statuses:
        document_filter["status"] = list(statuses)
    if document_types:
        document_filter["by_type"] = list(document_types)
    api = dataclasses.replace(
        API,
        clients=dataclasses.replace(API.clients, page_size=per_page),
        invoices=dataclasses.replace(API.invoices, page_size=per_page, json={"filter": document_filter}),
    )
    account = Account(
        label=label,
        base_url=(base_url or DEFAULT_BASE_URL.format(account_name=label)).rstrip("/"),
        secrets={"api_key": api_key},
        requests_per_minute=requests_per_minute,
        concurrency=concurrency,
        only_clients=[str(c) for c in client_ids] if client_ids else None,
        transport=transport,
    )
    return billing_resource(api, account)


PROVIDER = Provider(
    name=NAME, title=TITLE, secrets=("api_key",), required_config=("account_name",), source=invoicexpress
)
