"""Fohlio: client invoices, their lines and the team's clients, loaded incrementally.

See `sources/fohlio/README.md` for the column mapping, the status and currency rules, and
how incremental loading behaves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from sources.fohlio.api import API, CLIENTS_CURSOR, INVOICES_CURSOR
from sources.fohlio.settings import DEFAULT_ACCOUNT, MAX_PAGE_SIZE, NAME, SETTINGS, TITLE
from sources.shared.currency import iso_4217
from sources.shared.declaration import Api
from sources.shared.driver import Account
from sources.shared.errors import ConfigurationError
from sources.shared.provider import Provider, config_hint
from sources.shared.values import ValueProblem


def account(values: Mapping[str, Any]) -> tuple[Api, Account]:
    """One team's `Api` and `Account` from its settings (docs/canonical-model.md, "Deletions": both
    listings are swept in full every `reconcile_every_days`)."""
    label = (values["account"] or DEFAULT_ACCOUNT).strip()
    per_page = int(values["per_page"])
    if not 1 <= per_page <= MAX_PAGE_SIZE:
        raise _settings_error(label, f"per_page must be between 1 and {MAX_PAGE_SIZE}, not {per_page}", "per_page")
    currency = values["currency"]
    fallback: str | None = None
    if currency not in (None, ""):
        try:
            fallback = iso_4217(currency, field="currency")
        except ValueProblem:
            raise _settings_error(
                label, f"currency must be an ISO 4217 code such as USD, not {currency!r}", "currency"
            ) from None
    project = str(values["project_id"]).strip() if values["project_id"] not in (None, "") else None
    overlap = dt.timedelta(seconds=int(values["overlap_seconds"]))
    reconcile_every_days = float(values["reconcile_every_days"])
    if reconcile_every_days < 0:
        raise _settings_error(
            label, f"reconcile_every_days must be 0 or more, not {reconcile_every_days:g}", "reconcile_every_days"
        )
    api = dataclasses.replace(
        API,
        clients=dataclasses.replace(
            API.clients, page_size=per_page, cursor=dataclasses.replace(CLIENTS_CURSOR, overlap=overlap)
        ),
        invoices=dataclasses.replace(
            API.invoices,
            page_size=per_page,
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
    return api, Account(
        label=label,
        base_url=values["base_url"],
        secrets={"api_key": values["api_key"]},
        auth_scheme=values["auth_scheme"] or "",
        requests_per_minute=values["requests_per_minute"],
        concurrency=int(values["concurrency"]),
        options={"currency": fallback},
        reconcile_every=dt.timedelta(days=reconcile_every_days),
    )


def _settings_error(account: str, message: str, key: str) -> ConfigurationError:
    return ConfigurationError(NAME, account, message, config_hint(NAME, [key], file="config.toml"))


PROVIDER = Provider(name=NAME, title=TITLE, api=API, settings=SETTINGS, account=account)
fohlio = PROVIDER.source  # the dlt source of one team, for a pipeline of one's own
