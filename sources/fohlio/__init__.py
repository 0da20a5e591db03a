"""Fohlio: client invoices, their lines and the team's clients, loaded incrementally.

See `sources/fohlio/README.md` for the column mapping, the status and currency rules, and
how incremental loading behaves.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import dlt

from sources.fohlio.incremental import OverlapCursor
from sources.fohlio.mapping import (
    client_categories,
    map_client,
    map_invoice,
    project_currencies,
    resolve_currency,
)
from sources.fohlio.settings import (
    AUTH_HEADER,
    BASE_URL,
    CONTACTS_PATH,
    DEFAULT_ACCOUNT,
    DEFAULT_OVERLAP_SECONDS,
    INVOICES_PATH,
    MAX_PER_PAGE,
    PROVIDER_NAME,
    TEAM_PATH,
    TITLE,
)
from sources.shared.auth import HeaderAuth
from sources.shared.errors import ConfigurationError, NotFoundError
from sources.shared.http import ApiClient
from sources.shared.model import TableWriter, write_invoice
from sources.shared.paginators import ShortPagePaginator, paginate
from sources.shared.provider import Provider
from sources.shared.redact import register_secret
from sources.shared.stats import RunStats, start_run
from sources.shared.values import ValueProblem, parse_timestamp, to_text

log = logging.getLogger("billing.fohlio")

_AUTH_HINT = (
    "check api_key in [sources.fohlio] of .dlt/secrets.toml (env SOURCES__FOHLIO__API_KEY), and "
    "auth_scheme (env SOURCES__FOHLIO__AUTH_SCHEME): empty sends the raw token, Bearer prefixes it"
)
_ISO = re.compile(r"^[A-Za-z]{3}$")


def _array(data: Any) -> Any:
    """docs/providers.md §4.2/§4.3 [DOC]: listings are bare JSON arrays, with no envelope."""
    return data


class _ProjectCurrencies:
    """Project currencies from `GET /team`, fetched once and only when an invoice needs them."""

    def __init__(self, client: ApiClient) -> None:
        self._client = client
        self._known: dict[str, str] | None = None

    def get(self) -> dict[str, str]:
        if self._known is None:
            try:
                self._known = project_currencies(self._client.get(TEAM_PATH).data)
            except NotFoundError:
                log.warning("fohlio: %s is not available; project currencies are unknown", TEAM_PATH)
                self._known = {}
        return self._known


def _settings_error(account: str, message: str) -> ConfigurationError:
    return ConfigurationError(PROVIDER_NAME, account, message, "fix it in [sources.fohlio] of .dlt/config.toml")


@dlt.source(name=PROVIDER_NAME, section=PROVIDER_NAME)
def fohlio(
    api_key: str = dlt.secrets.value,
    account: str = DEFAULT_ACCOUNT,
    base_url: str = BASE_URL,
    auth_scheme: str = "",
    currency: str | None = None,
    project_id: str | None = None,
    overlap_seconds: int = DEFAULT_OVERLAP_SECONDS,
    per_page: int = MAX_PER_PAGE,
) -> Any:
    """Load a Fohlio team's clients, client invoices and invoice lines into the canonical tables.

    Clients come from `GET /contacts?category_types[]=client`, invoices (with their lines) from
    `GET /client_invoices`. Both listings are incremental through `updated_since`: invoices from
    the highest `updated_at` already loaded minus `overlap_seconds`, clients from the start of the
    previous run minus the same overlap. Invoices seen again inside the overlap are not rewritten.

    Args:
        api_key: the API token, sent in the `authorization` header.
        account: the label stored in the `account` column (the team, as you name it).
        base_url: the API root.
        auth_scheme: empty to send the raw token; `Bearer` to send `Bearer <token>`.
        currency: ISO code used when neither the invoice's project nor its client sets a currency.
        project_id: load only this project's invoices.
        overlap_seconds: how far before the previous mark the next run asks again.
        per_page: page size of both listings (1 to 100).

    Returns:
        One resource, `fohlio_billing`, yielding the `clients`, `invoices` and `invoice_items` tables.
    """
    account = (account or DEFAULT_ACCOUNT).strip()
    if not 1 <= int(per_page) <= MAX_PER_PAGE:
        raise _settings_error(account, f"per_page must be between 1 and {MAX_PER_PAGE}, not {per_page}")
    fallback = (currency or "").strip()
    if fallback and not _ISO.match(fallback):
        raise _settings_error(account, f"currency must be an ISO 4217 code such as USD, not {currency!r}")
    project = str(project_id).strip() if project_id not in (None, "") else None
    register_secret(api_key)

    @dlt.resource(name="fohlio_billing")
    def fohlio_billing() -> Iterator[Any]:
        stats = start_run(PROVIDER_NAME, account)
        state = dlt.current.source_state().setdefault(account, {})
        overlap = dt.timedelta(seconds=int(overlap_seconds))
        with ApiClient(
            PROVIDER_NAME,
            account,
            base_url,
            auth=HeaderAuth(AUTH_HEADER, api_key, (auth_scheme or "").strip() or None),
            auth_hint=_AUTH_HINT,
            stats=stats,
        ) as client:
            writer = TableWriter()
            yield from _load_clients(client, writer, stats, state, overlap, int(per_page), account)
            cursor = OverlapCursor(state, f"invoices:project:{project}" if project else "invoices", overlap)
            yield from _load_invoices(
                client, writer, stats, cursor, int(per_page), account, project, fallback.upper() or None
            )
            yield from writer.flush()
        cursor.commit()

    return fohlio_billing


def _load_clients(
    client: ApiClient,
    writer: TableWriter,
    stats: RunStats,
    state: dict[str, Any],
    overlap: dt.timedelta,
    per_page: int,
    account: str,
) -> Iterator[Any]:
    """Contacts of the `client` category changed since the previous run (all on the first one).

    Contacts document no timestamp, so the mark is the start of the previous complete listing.
    """
    started = int(time.time())
    # docs/providers.md §4.2 [DOC]: `category_types[]` is a PHP-style array parameter.
    params: dict[str, Any] = {"category_types[]": ["client"]}
    previous = state.get("contacts_listed_at")
    if previous is not None:
        params["updated_since"] = int(previous) - int(overlap.total_seconds())
    for page in paginate(client, CONTACTS_PATH, ShortPagePaginator(per_page), _array, params=params):
        for contact in page.items:
            # An API that ignored the filter must still not turn suppliers into clients.
            if not isinstance(contact, dict) or "client" not in client_categories(contact):
                continue
            try:
                row = map_client(contact, provider=PROVIDER_NAME, account=account)
            except ValueProblem as problem:
                stats.skip(f"client: {problem}", to_text(contact.get("id")))
                continue
            stats.add(clients=1)
            yield from writer.add_client(row)
    state["contacts_listed_at"] = started


def _load_invoices(
    client: ApiClient,
    writer: TableWriter,
    stats: RunStats,
    cursor: OverlapCursor,
    per_page: int,
    account: str,
    project: str | None,
    fallback: str | None,
) -> Iterator[Any]:
    """Client invoices changed since the mark minus the overlap; unchanged ones are counted."""
    params: dict[str, Any] = {}
    if project:
        params["project_id"] = project
    if cursor.since is not None:
        params["updated_since"] = cursor.since
    projects = _ProjectCurrencies(client)
    for page in paginate(client, INVOICES_PATH, ShortPagePaginator(per_page), _array, params=params):
        for invoice in page.items:
            if not isinstance(invoice, dict):
                stats.skip("invoice: not a JSON object")
                continue
            invoice_id = to_text(invoice.get("id")) or ""
            try:
                updated_at = parse_timestamp(invoice.get("updated_at"), field="updated_at")
            except ValueProblem:
                updated_at = None
            cursor.observe(invoice_id, updated_at)
            if not cursor.is_changed(invoice_id, updated_at):
                stats.add(unchanged=1)
                continue
            try:
                currency = resolve_currency(invoice, projects.get(), fallback)
                mapped = map_invoice(invoice, provider=PROVIDER_NAME, account=account, currency=currency)
            except ValueProblem as problem:
                reason = str(problem)
                if reason.startswith("currency unknown"):
                    reason += " (set sources.fohlio.currency)"
                stats.skip(f"invoice: {reason}", invoice_id)
                continue
            yield from write_invoice(writer, mapped, stats)


PROVIDER = Provider(
    name=PROVIDER_NAME,
    title=TITLE,
    secrets=("api_key",),
    required_config=(),
    source=fohlio,
)
