"""Kitchen (kitchen.co): clients and workspace invoices into the canonical billing tables."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import dlt
import httpx

from sources.kitchen import mapping
from sources.kitchen.settings import (
    CLIENTS_PATH,
    DEFAULT_BASE_URL,
    DEFAULT_PER_PAGE,
    DEFAULT_STATE,
    INVOICES_PATH,
    JSON_HEADERS,
    PROVIDER_NAME,
    REQUIRED_CONFIG,
    SECRETS,
    STATES,
    TITLE,
)
from sources.shared.auth import HeaderAuth
from sources.shared.cursor import UpdateCursor
from sources.shared.errors import ConfigurationError, HttpStatusError
from sources.shared.http import ApiClient
from sources.shared.model import TableWriter, write_invoice
from sources.shared.paginators import LaravelPaginator, paginate
from sources.shared.provider import Provider
from sources.shared.ratelimit import RateBudget
from sources.shared.redact import register_secret
from sources.shared.stats import RunStats, start_run
from sources.shared.values import ValueProblem, to_text

log = logging.getLogger("billing.kitchen")

AUTH_HINT = (
    "check api_key in [sources.kitchen] of .dlt/secrets.toml (env SOURCES__KITCHEN__API_KEY): it must be "
    "a key of this workspace (Settings → API), and workspace in [sources.kitchen] "
    "(env SOURCES__KITCHEN__WORKSPACE)"
)


def make_client(
    api_key: str,
    workspace: str,
    base_url: str | None = None,
    *,
    requests_per_minute: float | None = None,
    stats: RunStats | None = None,
    transport: httpx.BaseTransport | None = None,
) -> ApiClient:
    """An `ApiClient` for one Kitchen workspace, with the headers Laravel needs to answer JSON.

    Args:
        api_key: the workspace's API key, sent as `Authorization: Bearer <key>`.
        workspace: the workspace subdomain; also the `account` of every row.
        base_url: the API root; default `https://{workspace}.kitchen.co/api`.
        requests_per_minute: a proactive budget; None sends as fast as the API answers.
        stats: the run's counters.
        transport: an httpx transport, for tests.

    Raises:
        ConfigurationError: the workspace or the key is empty.
    """
    if not workspace or not workspace.strip():
        raise ConfigurationError(PROVIDER_NAME, None, "workspace is empty", "set SOURCES__KITCHEN__WORKSPACE")
    if not api_key or not api_key.strip():
        raise ConfigurationError(PROVIDER_NAME, workspace, "api_key is empty", AUTH_HINT)
    register_secret(api_key)
    return ApiClient(
        PROVIDER_NAME,
        workspace,
        base_url or DEFAULT_BASE_URL.format(workspace=workspace.strip()),
        auth=HeaderAuth("Authorization", api_key.strip(), scheme="Bearer"),
        auth_hint=AUTH_HINT,
        headers=JSON_HEADERS,
        budget=RateBudget(requests_per_minute),
        stats=stats,
        transport=transport,
    )


def _data(body: Any) -> Any:
    return body.get("data") if isinstance(body, dict) else None


def _total(body: Any) -> Any:
    meta = body.get("meta") if isinstance(body, dict) else None
    return meta.get("total") if isinstance(meta, dict) else None


def list_clients(client: ApiClient, per_page: int = DEFAULT_PER_PAGE) -> Iterator[Mapping[str, Any]]:
    """Every client of the workspace (`GET /api/clients`, Laravel pagination)."""
    for page in paginate(client, CLIENTS_PATH, LaravelPaginator(per_page), _data):
        yield from page.items


class InvoiceListing:
    """Every invoice of the workspace (`GET /api/invoices?state=...`), page after page.

    The list is sorted newest-created first and paged by offset, so an invoice created or deleted
    while it is read shifts the pages: one invoice may show up twice (the second copy is dropped)
    or be missed. `stable` says whether `meta.total` stayed the same on every page, that is,
    whether the listing can be trusted to have shown every invoice.
    """

    def __init__(self, client: ApiClient, state: str = DEFAULT_STATE, per_page: int = DEFAULT_PER_PAGE) -> None:
        self.client, self.state, self.per_page = client, state, per_page
        self.totals: set[Any] = set()
        self.duplicates = 0

    @property
    def stable(self) -> bool:
        return len(self.totals) <= 1

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        seen: set[str] = set()
        pages = paginate(
            self.client, INVOICES_PATH, LaravelPaginator(self.per_page), _data, params={"state": self.state}
        )
        try:
            for page in pages:
                self.totals.add(_total(page.response.data))
                for invoice in page.items:
                    invoice_id = to_text(invoice.get("id")) if isinstance(invoice, dict) else None
                    if invoice_id is not None and invoice_id in seen:
                        self.duplicates += 1
                        continue
                    if invoice_id is not None:
                        seen.add(invoice_id)
                    yield invoice
        except HttpStatusError as exc:
            if exc.status != 422:
                raise
            # docs/providers.md §3.5 [3P]: Laravel validation errors; the body (in the message) names the field.
            raise HttpStatusError(
                exc.provider,
                exc.account,
                exc.message,
                f"check state ({', '.join(STATES)}) and per_page in [sources.{PROVIDER_NAME}]",
                status=exc.status,
                url=exc.url,
            ) from exc


@dlt.resource(name="kitchen_billing")
def kitchen_billing(
    api_key: str,
    workspace: str,
    base_url: str | None = None,
    state: str = DEFAULT_STATE,
    per_page: int = DEFAULT_PER_PAGE,
    requests_per_minute: float | None = None,
) -> Iterator[Any]:
    """Clients, then every invoice whose `updated_at` moved since the last successful load.

    Every page of invoices is read on every run (the API has no update filter); only changed
    invoices are mapped and written. An invoice is also rewritten when its client's name changed,
    and an invoice skipped by a failed mapping is tried again on the next run.
    """
    account = workspace.strip() if workspace else workspace
    stats = start_run(PROVIDER_NAME, account)
    state_store = dlt.current.source_state().setdefault(account, {})
    cursor = UpdateCursor(state_store)
    client_cursor = UpdateCursor(state_store, "client_updated_at")
    retry_ids: set[str] = set(state_store.get("retry_ids") or [])
    known_names: dict[str, Any] = dict(state_store.get("client_names") or {})
    writer = TableWriter()
    failed: set[str] = set()

    with make_client(api_key, workspace, base_url, requests_per_minute=requests_per_minute, stats=stats) as client:
        clients = list(list_clients(client, per_page))
        stats.clients_total = len(clients)
        for raw_client in clients:
            client_key = to_text(raw_client.get("id")) or "?"
            try:
                row = mapping.map_client(raw_client, account)
            except ValueProblem as exc:
                stats.skip(f"client: {exc}", client_key)
                continue
            stats.add(clients_done=1)
            # docs/providers.md §3.2 [DOC]: clients carry `updated_at`; an unchanged one is not rewritten.
            client_cursor.observe(client_key, row["updated_at"])
            if not client_cursor.is_changed(client_key, row["updated_at"]):
                continue
            stats.add(clients=1)
            yield from writer.add_client(row)
        client_cursor.commit()
        names = mapping.client_names(clients)

        listing = InvoiceListing(client, state, per_page)
        for invoice in listing:
            invoice_id = to_text(invoice.get("id")) or "?"
            try:
                updated_at = mapping.invoice_updated_at(invoice)
            except ValueProblem:
                updated_at = None
            cursor.observe(invoice_id, updated_at)
            client_id = to_text(invoice.get("client"))
            renamed = client_id is not None and names.get(client_id) != known_names.get(client_id)
            if not (cursor.is_changed(invoice_id, updated_at) or invoice_id in retry_ids or renamed):
                stats.add(unchanged=1)
                continue
            try:
                mapped = mapping.map_invoice(invoice, account, names)
            except ValueProblem as exc:
                stats.skip(f"invoice: {exc}", invoice_id)
                failed.add(invoice_id)
                continue
            yield from write_invoice(writer, mapped, stats)
        yield from writer.flush()

    if listing.stable:
        cursor.commit()
    else:
        # Pages shifted under the scan: an invoice may have been missed, so the mark stays put and
        # the next run looks again at everything changed since the previous successful one.
        log.warning("kitchen [%s]: the invoice list changed while it was read; the cursor was not moved", account)
    state_store["retry_ids"] = sorted(failed)
    state_store["client_names"] = names


@dlt.source(name=PROVIDER_NAME, section=PROVIDER_NAME)
def kitchen(
    api_key: str = dlt.secrets.value,
    workspace: str = dlt.config.value,
    base_url: str | None = None,
    state: str = DEFAULT_STATE,
    per_page: int = DEFAULT_PER_PAGE,
    requests_per_minute: float | None = None,
) -> Any:
    """Load one Kitchen workspace: its clients and its invoices with their lines.

    Clients come from `GET /api/clients` and invoices from `GET /api/invoices?state=all`, both
    Laravel-paginated. Rows go to the canonical `clients`, `invoices` and `invoice_items` tables,
    with `account` = the workspace. Loads are incremental on the invoices' `updated_at`: every page
    is read, unchanged invoices are not rewritten.

    Args:
        api_key: the workspace's API key (`[sources.kitchen] api_key`, env SOURCES__KITCHEN__API_KEY).
        workspace: the workspace subdomain (`acme` for acme.kitchen.co).
        base_url: the API root; default `https://{workspace}.kitchen.co/api`.
        state: `all` (default), `active` or `archived`; the API's own default, `active`, leaves
            archived invoices out.
        per_page: page size asked for; the API may use another, read back from `meta.per_page`.
        requests_per_minute: a proactive request budget; None (default) relies on 429 + Retry-After.

    Returns:
        The `kitchen_billing` resource, which fills the three canonical tables.
    """
    return kitchen_billing(
        api_key=api_key,
        workspace=workspace,
        base_url=base_url,
        state=state,
        per_page=per_page,
        requests_per_minute=requests_per_minute,
    )


PROVIDER = Provider(
    name=PROVIDER_NAME,
    title=TITLE,
    secrets=SECRETS,
    required_config=REQUIRED_CONFIG,
    source=kitchen,
)
