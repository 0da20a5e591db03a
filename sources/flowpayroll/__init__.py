"""Flow Payroll (Billing service): clients and their invoices into the canonical tables."""

from __future__ import annotations

from typing import Any

import dlt
import httpx

from sources.flowpayroll.api import API
from sources.flowpayroll.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_TOKEN_URL,
    NAME,
    TITLE,
)
from sources.shared.driver import Account, billing_resource
from sources.shared.provider import Provider

__all__ = ["PROVIDER", "flowpayroll"]


@dlt.source(name=NAME, section=NAME)
def flowpayroll(
    client_id: str = dlt.secrets.value,
    client_secret: str = dlt.secrets.value,
    account: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    token_url: str = DEFAULT_TOKEN_URL,
    requests_per_minute: float | None = DEFAULT_REQUESTS_PER_MINUTE,
    concurrency: int = DEFAULT_CONCURRENCY,
    transport: httpx.BaseTransport | None = None,
) -> Any:
    """Load a Flow Payroll organisation's billing clients and invoices.

    Authenticates with OAuth 2.0 client credentials, lists every client of the organisation
    and pages through each client's invoices (the API lists invoices per client only). There
    is no server-side filter, so every client is listed on every run; `updatedDate` decides
    which invoices are written, so an unchanged invoice is not rewritten (nor an unchanged
    client), while an invoice whose client was renamed is.

    Args:
        client_id: OAuth client id (`[sources.flowpayroll] client_id` in secrets.toml).
        client_secret: OAuth client secret (`[sources.flowpayroll] client_secret`).
        account: label stored in the `account` column and keying the incremental state;
            defaults to the organisation id the API returns.
        base_url: the Billing service root, `https://api.flowpayroll.ai/v1/billing` (live)
            or `https://api.sandbox.flowpayroll.ai/v1/billing`.
        token_url: the OAuth token endpoint, `https://auth.flowpayroll.ai/oauth2/token`
            (live) or `https://auth.sandbox.flowpayroll.ai/oauth2/token`.
        requests_per_minute: a proactive request budget; None (default) relies on 429 + Retry-After.
        concurrency: clients whose invoices are listed in parallel.
        transport: an httpx transport for every request (tests serve a sandbox in-process).

    Returns:
        One resource, `flowpayroll_billing`, yielding the `clients`, `invoices` and
        `invoice_items` tables.
    """
    return billing_resource(
        API,
        Account(
            label=(account or "").strip() or None,
            base_url=base_url,
            token_url=token_url,
            secrets={"client_id": client_id, "client_secret": client_secret},
            requests_per_minute=requests_per_minute,
            concurrency=int(concurrency),
            transport=transport,
        ),
    )


PROVIDER = Provider(
    name=NAME, title=TITLE, secrets=("client_id", "client_secret"), required_config=(), source=flowpayroll
)
