"""InvoiceXpress: every client's billing documents, as canonical invoices, lines and clients.

Lists clients with `GET /clients.json`, then each client's documents with
`POST /clients/{client_id}/invoices.json` (several clients in flight at once, within the
account's request budget), and maps them to the canonical `clients`, `invoices` and
`invoice_items` tables. The API has no change filter, so every run re-reads every client and
merges: unchanged documents are rewritten with identical values, changed ones (a new status, a
removed line) show their current state. Settings: `sources/invoicexpress/settings.py`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sources.invoicexpress.api import API
from sources.invoicexpress.settings import ARCHIVED_BOTH, DEFAULT_BASE_URL, NAME, SETTINGS, TITLE
from sources.shared.declaration import Api
from sources.shared.driver import Account, require
from sources.shared.provider import Provider


def account(values: Mapping[str, Any]) -> tuple[Api, Account]:
    """One account's `Api` and `Account` from its settings."""
    label = require(NAME, None, values["account_name"], "account_name")
    document_filter: dict[str, list[str]] = {"archived": list(values["archived"] or ARCHIVED_BOTH)}
    if values["statuses"]:
        document_filter["status"] = list(values["statuses"])
    if values["document_types"]:
        document_filter["by_type"] = list(values["document_types"])
    per_page = int(values["per_page"])
    # A listing narrowed by status, type or archived state is not every document of a client:
    # it shows no deletion (docs/canonical-model.md, "Deletions").
    narrowed = bool(values["statuses"] or values["document_types"]) or set(document_filter["archived"]) != set(
        ARCHIVED_BOTH
    )
    api = dataclasses.replace(
        API,
        clients=dataclasses.replace(API.clients, page_size=per_page),
        invoices=dataclasses.replace(
            API.invoices, page_size=per_page, json={"filter": document_filter}, complete=not narrowed
        ),
    )
    client_ids = values["client_ids"]
    return api, Account(
        label=label,
        base_url=(values["base_url"] or DEFAULT_BASE_URL.format(account_name=label)).rstrip("/"),
        secrets={"api_key": values["api_key"]},
        requests_per_minute=values["requests_per_minute"],
        concurrency=int(values["concurrency"]),
        only_clients=[str(c) for c in client_ids] if client_ids else None,
    )


PROVIDER = Provider(name=NAME, title=TITLE, api=API, settings=SETTINGS, account=account)
invoicexpress = PROVIDER.source  # the dlt source of one account, for a pipeline of one's own
