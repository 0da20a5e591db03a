"""Flow Payroll (Billing service): clients and their invoices into the canonical tables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt

from sources.flowpayroll.api import error_message, list_clients, list_invoices
from sources.flowpayroll.auth import ClientCredentialsAuth
from sources.flowpayroll.mapping import (
    Formats,
    map_client,
    map_invoice,
    organisation_of,
    parse_timestamp,
)
from sources.flowpayroll.settings import BASE_URL, PROVIDER_NAME, TITLE, TOKEN_URL, WORKERS, auth_hint
from sources.shared.concurrency import bounded_map
from sources.shared.cursor import UpdateCursor
from sources.shared.errors import ConfigurationError, NotFoundError
from sources.shared.http import ApiClient
from sources.shared.model import TableWriter, write_invoice
from sources.shared.provider import Provider
from sources.shared.stats import RunStats, start_run
from sources.shared.values import ValueProblem

__all__ = ["PROVIDER", "flowpayroll"]


@dlt.source(name=PROVIDER_NAME, section=PROVIDER_NAME)
def flowpayroll(
    client_id: str = dlt.secrets.value,
    client_secret: str = dlt.secrets.value,
    account: str | None = None,
    base_url: str = BASE_URL,
    token_url: str = TOKEN_URL,
) -> Any:
    """Load a Flow Payroll organisation's billing clients and invoices.

    Authenticates with OAuth 2.0 client credentials, lists every client of the organisation
    and pages through each client's invoices (the API lists invoices per client only). There
    is no server-side filter, so every client is listed on every run; `updatedDate` decides
    which invoices are written, so an unchanged invoice is not rewritten.

    Args:
        client_id: OAuth client id (`[sources.flowpayroll] client_id` in secrets.toml).
        client_secret: OAuth client secret (`[sources.flowpayroll] client_secret`).
        account: label stored in the `account` column and keying the incremental state;
            defaults to the organisation id the API returns.
        base_url: the Billing service root, `https://api.flowpayroll.ai/v1/billing` (live)
            or `https://api.sandbox.flowpayroll.ai/v1/billing`.
        token_url: the OAuth token endpoint, `https://auth.flowpayroll.ai/oauth2/token`
            (live) or `https://auth.sandbox.flowpayroll.ai/oauth2/token`.

    Returns:
        One resource, `flowpayroll_billing`, yielding the `clients`, `invoices` and
        `invoice_items` tables.
    """
    return flowpayroll_billing(client_id, client_secret, account or None, base_url, token_url)


@dlt.resource(name=f"{PROVIDER_NAME}_billing")
def flowpayroll_billing(
    client_id: str,
    client_secret: str,
    account: str | None,
    base_url: str,
    token_url: str,
) -> Iterator[Any]:
    """Yield the canonical tables for one organisation, writing only what changed."""
    stats = start_run(PROVIDER_NAME, account or "")
    auth = ClientCredentialsAuth(token_url, client_id, client_secret, account=stats.account, stats=stats)
    api = ApiClient(
        PROVIDER_NAME,
        stats.account,
        base_url,
        auth=auth,
        auth_hint=auth_hint(),
        stats=stats,
        max_connections=WORKERS + 2,
        error_message=error_message,
    )
    try:
        yield from _load(api, auth, stats, account)
    finally:
        api.close()
        auth.close()


def _load(api: ApiClient, auth: ClientCredentialsAuth, stats: RunStats, account: str | None) -> Iterator[Any]:
    clients = list(list_clients(api))
    if not clients:
        return
    label = account or next((org for org in map(organisation_of, (c for c, _ in clients)) if org), None)
    if label is None:
        raise ConfigurationError(
            PROVIDER_NAME,
            None,
            "the API returned no organisationId to label the rows",
            f"set account in [sources.{PROVIDER_NAME}] of .dlt/config.toml "
            f"(or SOURCES__{PROVIDER_NAME.upper()}__ACCOUNT)",
        )
    stats.account = api.account = auth.account = label
    stats.clients_total = len(clients)

    # dlt persists this state with the load it belongs to, so the cursors only move on success.
    state = dlt.current.source_state().setdefault(label, {})
    client_cursor = UpdateCursor(state, "client_updated_at")
    invoice_cursor = UpdateCursor(state, "updated_at")
    writer = TableWriter()

    names: dict[str, str | None] = {}
    for raw, formats in clients:
        try:
            row = map_client(raw, account=label, formats=formats)
        except ValueProblem as exc:
            _skip(stats, "client", raw, exc)
            continue
        names[row["client_id"]] = row["name"]
        client_cursor.observe(row["client_id"], row["updated_at"])
        if client_cursor.is_changed(row["client_id"], row["updated_at"]):
            stats.add(clients=1)
            yield from writer.add_client(row)

    for client_id, listing in bounded_map(lambda cid: _invoices_of(api, cid), list(names), WORKERS):
        if listing is None:
            stats.skip("client not found (HTTP 404) while listing its invoices", client_id)
            continue
        for raw, formats in listing:
            name = names.get(client_id)
            yield from _write_invoice(writer, invoice_cursor, stats, label, name, raw, formats)
        stats.add(clients_done=1)

    client_cursor.commit()
    invoice_cursor.commit()
    yield from writer.flush()


def _invoices_of(api: ApiClient, client_id: str) -> list[tuple[dict[str, Any], Formats]] | None:
    try:
        return list_invoices(api, client_id)
    except NotFoundError:
        # docs/providers.md §2.5 [DOC]: 404 means not found within the organisation: the client was
        # removed between the clients listing and this one.
        return None


def _write_invoice(
    writer: TableWriter,
    cursor: UpdateCursor,
    stats: RunStats,
    label: str,
    client_name: str | None,
    raw: dict[str, Any],
    formats: Formats,
) -> Iterator[Any]:
    try:
        invoice_id = str(raw["id"])
        updated_at = parse_timestamp(raw.get("updatedDate"), formats, field="updatedDate")
        if not cursor.is_changed(invoice_id, updated_at):
            cursor.observe(invoice_id, updated_at)
            stats.add(unchanged=1)
            return
        mapped = map_invoice(raw, account=label, client_name=client_name, formats=formats)
    except (KeyError, ValueProblem) as exc:
        _skip(stats, "invoice", raw, exc)
        return
    cursor.observe(invoice_id, updated_at)
    yield from write_invoice(writer, mapped, stats)


def _skip(stats: RunStats, kind: str, raw: Any, exc: Exception) -> None:
    """Count a record that cannot be mapped; the run summary reports it with its id."""
    record_id = str(raw.get("id")) if isinstance(raw, dict) else None
    reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
    stats.skip(f"{kind} not mappable: {reason}", record_id)


PROVIDER = Provider(
    name=PROVIDER_NAME,
    title=TITLE,
    secrets=("client_id", "client_secret"),
    required_config=(),
    source=flowpayroll,
)
