"""Kitchen (kitchen.co): clients and workspace invoices into the canonical billing tables.

Clients come from `GET /api/clients` and invoices from `GET /api/invoices?state=all`, both
Laravel-paginated. Rows go to the canonical `clients`, `invoices` and `invoice_items` tables,
with `account` = the workspace. Loads are incremental on the invoices' `updated_at`: every page
is read, unchanged invoices are not rewritten; an invoice is also rewritten when its client's
name changed, and one that could not be mapped is tried again on the next run. Settings:
`sources/kitchen/settings.py` (and the README beside this file).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sources.kitchen.api import API
from sources.kitchen.settings import DEFAULT_BASE_URL, NAME, SETTINGS, TITLE
from sources.shared.declaration import Api
from sources.shared.driver import Account, require
from sources.shared.provider import Provider


def account(values: Mapping[str, Any]) -> tuple[Api, Account]:
    """One workspace's `Api` and `Account` from its settings."""
    label = require(NAME, None, values["workspace"], "workspace")
    per_page = int(values["per_page"])
    api = dataclasses.replace(
        API,
        clients=dataclasses.replace(API.clients, page_size=per_page),
        # Only `state=all` lists every invoice of the workspace: a narrower listing shows no deletion.
        invoices=dataclasses.replace(
            API.invoices, page_size=per_page, params={"state": values["state"]}, complete=values["state"] == "all"
        ),
    )
    return api, Account(
        label=label,
        base_url=values["base_url"] or DEFAULT_BASE_URL.format(workspace=label),
        secrets={"api_key": values["api_key"]},
        requests_per_minute=values["requests_per_minute"],
        concurrency=int(values["concurrency"]),
    )


PROVIDER = Provider(name=NAME, title=TITLE, api=API, settings=SETTINGS, account=account)
kitchen = PROVIDER.source  # the dlt source of one workspace, for a pipeline of one's own
