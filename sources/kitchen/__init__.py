"""Kitchen (kitchen.co): clients and workspace invoices into the canonical billing tables."""

from __future__ import annotations

import dataclasses
from typing import Any

import dlt
import httpx

from sources.kitchen.api import API
from sources.kitchen.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_PAGE_SIZE,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_STATE,
    NAME,
    TITLE,
)
from sources.shared.driver import Account, billing_resource, require
from sources.shared.provider import Provider


@dlt.source(name=NAME, section=NAME)
def kitchen(
    api_key: str = dlt.secrets.value,
    workspace: str = dlt.config.value,
    base_url: str | None = None,
    state: str = DEFAULT_STATE,
    per_page: int = DEFAULT_PAGE_SIZE,
    requests_per_minute: float | None = DEFAULT_REQUESTS_PER_MINUTE,
    concurrency: int = DEFAULT_CONCURRENCY,
    transport: httpx.BaseTransport | None = None,
) -> Any:
    """Load one Kitchen workspace: its clients and its invoices with their lines.

    Clients come from `GET /api/clients` and invoices from `GET /api/invoices?state=all`, both
    Laravel-paginated. Rows go to the canonical `clients`, `invoices` and `invoice_items` tables,
    with `account` = the workspace. Loads are incremental on the invoices' `updated_at`: every page
    is read, unchanged invoices are not rewritten; an invoice is also rewritten when its client's
    name changed, and one that could not be mapped is tried again on the next run.

    Args:
        api_key: the workspace's API key (`[sources.kitchen] api_key`, env SOURCES__KITCHEN__API_KEY),
            sent as `Authorization: Bearer <key>`.
        workspace: the workspace subdomain (`acme` for acme.kitchen.co); the `account` of every row.
        base_url: the API root; default `https://{workspace}.kitchen.co/api`.
        state: `all` (default), `active` or `archived`; the API's own default, `active`, leaves
            archived invoices out.
        per_page: page size asked for; the API may use another, read back from `meta.per_page`.
        requests_per_minute: a proactive request budget; None (default) relies on 429 + Retry-After.
        concurrency: pages of a listing fetched in parallel once its page count is known (default 1).
        transport: an httpx transport for every request (tests serve a sandbox in-process).

    Returns:
        The `kitchen_billing` resource, which fills the three canonical tables.
    """
    label = require(NAME, None, workspace, "workspace")
    api = dataclasses.replace(
        API,
        clients=dataclasses.replace(API.clients, page_size=per_page),
        # Only `state=all` lists every invoice of the workspace: a narrower listing shows no deletion.
        invoices=dataclasses.replace(
            API.invoices, page_size=per_page, params={"state": state}, complete=state == "all"
        ),
    )
    account = Account(
        label=label,
        base_url=base_url or DEFAULT_BASE_URL.format(workspace=label),
        secrets={"api_key": api_key},
        requests_per_minute=requests_per_minute,
        concurrency=int(concurrency),
        transport=transport,
    )
    return billing_resource(api, account)


PROVIDER = Provider(name=NAME, title=TITLE, secrets=("api_key",), required_config=("workspace",), source=kitchen)
