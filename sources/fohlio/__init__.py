"""Fohlio: client invoices, their lines and the team's clients, loaded incrementally.

See `sources/fohlio/README.md` for the column mapping, the status and currency rules, and
how incremental loading behaves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import dlt
import httpx

from sources.fohlio.api import API, CLIENTS_CURSOR, INVOICES_CURSOR
from sources.fohlio.settings import (
    DEFAULT_ACCOUNT,
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_OVERLAP_SECONDS,
    DEFAULT_RECONCILE_EVERY_DAYS,
    DEFAULT_REQUESTS_PER_MINUTE,
    MAX_PAGE_SIZE,
    NAME,
    TITLE,
)
from sources.shared.currency import iso_4217
from sources.shared.driver import Account, billing_resource
from sources.shared.errors import ConfigurationError
from sources.shared.provider import Provider, config_hint
from sources.shared.values import ValueProblem


@dlt.source(name=NAME, section=NAME)
def fohlio(
    api_key: str = dlt.secrets.value,
    account: str = DEFAULT_ACCOUNT,
    base_url: str = DEFAULT_BASE_URL,
    auth_scheme: str = "",
    currency: str | None = None,
    project_id: str | None = None,
    overlap_seconds: int = DEFAULT_OVERLAP_SECONDS,
    per_page: int = MAX_PAGE_SIZE,
    requests_per_minute: float | None = DEFAULT_REQUESTS_PER_MINUTE,
    reconcile_every_days: float = DEFAULT_RECONCILE_EVERY_DAYS,
    concurrency: int = DEFAULT_CONCURRENCY,
    transport: httpx.BaseTransport | None = None,
) -> Any:
    """Load a Fohlio team's clients, client invoices and invoice lines into the canonical tables.

    Clients come from `GET /contacts?category_types[]=client`, invoices (with their lines) from
    `GET /client_invoices`. Both listings are incremental through `updated_since`: invoices from
    the highest `updated_at` already loaded minus `overlap_seconds`, clients from the start of the
    previous run minus the same overlap. Invoices seen again inside the overlap are not rewritten.
    Every `reconcile_every_days` both listings are read in full (a sweep), so that what was
    deleted in Fohlio is marked deleted (docs/canonical-model.md, "Deletions").

    Args:
        api_key: the API token, sent in the `authorization` header.
        account: the label stored in the `account` column (the team, as you name it).
        base_url: the API root.
        auth_scheme: empty to send the raw token; `Bearer` to send `Bearer <token>`.
        currency: ISO code used when neither the invoice's project nor its client sets a currency.
        project_id: load only this project's invoices.
        overlap_seconds: how far before the previous mark the next run asks again.
        per_page: page size of both listings (1 to 100).
        requests_per_minute: a proactive request budget; None (default) relies on 429 + Retry-After.
        reconcile_every_days: days between two sweeps (0: every run).
        concurrency: pages of a listing fetched in parallel once its page count is known (default 1).
        transport: an httpx transport for every request (tests serve a sandbox in-process).

    Returns:
        One resource, `fohlio_billing`, yielding the `clients`, `invoices` and `invoice_items` tables.
    """
    label = (account or DEFAULT_ACCOUNT).strip()
    if not 1 <= int(per_page) <= MAX_PAGE_SIZE:
        raise _settings_error(label, f"per_page must be between 1 and {MAX_PAGE_SIZE}, not {per_page}", "per_page")
    fallback: str | None = None
    if currency not in (None, ""):
        try:
            fallback = iso_4217(currency, field="currency")
        except ValueProblem:
            raise _settings_error(
                label, f"currency must be an ISO 4217 code such as USD, not {currency!r}", "currency"
            ) from None
    project = str(project_id).strip() if project_id not in (None, "") else None
    overlap = dt.timedelta(seconds=int(overlap_seconds))
    if float(reconcile_every_days) < 0:
        raise _settings_error(
            label, f"reconcile_every_days must be 0 or more, not {reconcile_every_days}", "reconcile_every_days"
        )
    api = dataclasses.replace(
        API,
        clients=dataclasses.replace(
            API.clients, page_size=int(per_page), cursor=dataclasses.replace(CLIENTS_CURSOR, overlap=overlap)
        ),
        invoices=dataclasses.replace(
            API.invoices,
            page_size=int(per_page),
            params={"project_id": project} if project else {},
            # One project's invoices are not the account's: a listing of them shows no deletion.
            complete=project is None,
            # One cursor per project filter, so that changing the filter never hides invoices
            # the previous filter excluded.
            cursor=dataclasses.replace(
                INVOICES_CURSOR,
                overlap=overlap,
                state_key=f"invoices:project:{project}" if project else INVOICES_CURSOR.state_key,
            ),
        ),
    )
    return billing_resource(
        api,
        Account(
            label=label,
            base_url=base_url,
            secrets={"api_key": api_key},
            auth_scheme=auth_scheme or "",
            requests_per_minute=requests_per_minute,
            concurrency=int(concurrency),
            options={"currency": fallback},
            transport=transport,
            reconcile_every=dt.timedelta(days=float(reconcile_every_days)),
        ),
    )


def _settings_error(account: str, message: str, key: str) -> ConfigurationError:
    return ConfigurationError(NAME, account, message, config_hint(NAME, [key], file="config.toml"))


PROVIDER = Provider(name=NAME, title=TITLE, secrets=("api_key",), required_config=(), source=fohlio)
