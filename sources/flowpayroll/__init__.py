"""Flow Payroll (Billing service): clients and their invoices into the canonical tables.

Authenticates with OAuth 2.0 client credentials, lists every client of the organisation and
pages through each client's invoices (the API lists invoices per client only). There is no
server-side filter, so every client is listed on every run; `updatedDate` decides which
invoices are written, so an unchanged invoice is not rewritten (nor an unchanged client), while
an invoice whose client was renamed is. Settings: `sources/flowpayroll/settings.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sources.flowpayroll.api import API
from sources.flowpayroll.settings import NAME, SETTINGS, TITLE
from sources.shared.declaration import Api
from sources.shared.driver import Account
from sources.shared.provider import Provider


def account(values: Mapping[str, Any]) -> tuple[Api, Account]:
    """One organisation's `Api` and `Account` from its settings."""
    return API, Account(
        label=(values["account"] or "").strip() or None,
        base_url=values["base_url"],
        token_url=values["token_url"],
        secrets={"client_id": values["client_id"], "client_secret": values["client_secret"]},
        requests_per_minute=values["requests_per_minute"],
        concurrency=int(values["concurrency"]),
    )


PROVIDER = Provider(name=NAME, title=TITLE, api=API, settings=SETTINGS, account=account)
flowpayroll = PROVIDER.source  # the dlt source of one organisation, for a pipeline of one's own
