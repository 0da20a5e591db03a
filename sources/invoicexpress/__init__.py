"""InvoiceXpress: every client's billing documents, as canonical invoices, lines and clients."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import dlt

from sources.invoicexpress.mapping import error_message, map_client, map_invoice
from sources.invoicexpress.settings import (
    ARCHIVED_BOTH,
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_PER_PAGE,
    DEFAULT_REQUESTS_PER_MINUTE,
    TITLE,
)
from sources.invoicexpress.settings import PROVIDER as NAME
from sources.shared.auth import QueryParamAuth
from sources.shared.concurrency import bounded_map
from sources.shared.errors import ConfigurationError, NotFoundError
from sources.shared.http import ApiClient
from sources.shared.model import TableWriter, write_invoice
from sources.shared.paginators import PageNumberPaginator, paginate, paginate_numbered
from sources.shared.provider import Provider
from sources.shared.ratelimit import RateBudget
from sources.shared.stats import RunStats, start_run
from sources.shared.values import ValueProblem, to_text


@dlt.source(name=NAME, section=NAME)
def invoicexpress(
    account_name: str = dlt.config.value,
    api_key: str = dlt.secrets.value,
    base_url: str | None = None,
    client_ids: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    document_types: Sequence[str] | None = None,
    archived: Sequence[str] | None = None,
    per_page: int = DEFAULT_PER_PAGE,
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> Any:
    """Load an InvoiceXpress account's clients and every client's documents.

    Lists clients with `GET /clients.json`, then each client's documents with
    `POST /clients/{client_id}/invoices.json` (several clients in flight at once, within the
    account's request budget), and maps them to the canonical `clients`, `invoices` and
    `invoice_items` tables. The API has no change filter, so every run re-reads every client
    and merges: unchanged documents are rewritten with identical values, changed ones (a new
    status, a removed line) show their current state.

    Args:
        account_name: the account subdomain (`acme` in `acme.app.invoicexpress.com`); also the
            value of the `account` column.
        api_key: the API key (secret). It travels in the query string and is redacted from
            every log line, error and trace.
        base_url: the API root; default `https://{account_name}.app.invoicexpress.com`.
        client_ids: load only these clients (ids as text).
        statuses: the `filter.status` list sent to the API; default: every status.
        document_types: the `filter.by_type` list (`Invoice`, `CreditNote`, ...); default: all.
        archived: the `filter.archived` list; default both `archived` and `non_archived`.
        per_page: page size asked for; the size actually served is read back.
        requests_per_minute: proactive budget (documented limit: 780 per account).
        concurrency: clients whose documents are listed in parallel.
    """
    if not account_name or not str(account_name).strip():
        raise ConfigurationError(
            NAME, None, "account_name is empty", "set SOURCES__INVOICEXPRESS__ACCOUNT_NAME to your account subdomain"
        )
    account = str(account_name).strip()
    url = (base_url or DEFAULT_BASE_URL.format(account_name=account)).rstrip("/")
    document_filter: dict[str, list[str]] = {"archived": list(archived or ARCHIVED_BOTH)}
    if statuses:
        document_filter["status"] = list(statuses)
    if document_types:
        document_filter["by_type"] = list(document_types)
    return invoicexpress_billing(
        account,
        api_key,
        url,
        [str(c) for c in client_ids] if client_ids else None,
        document_filter,
        per_page,
        requests_per_minute,
        concurrency,
    )


def _pagination(data: Any) -> tuple[Any, Any, Any]:
    meta = data.get("pagination") if isinstance(data, dict) else None
    if not isinstance(meta, dict):
        return None, None, None
    return meta.get("current_page"), meta.get("total_pages"), meta.get("per_page")


def _records(key: str) -> Any:
    return lambda data: data.get(key) if isinstance(data, dict) else data


@dlt.resource(name="invoicexpress_billing")
def invoicexpress_billing(
    account: str,
    api_key: str,
    base_url: str,
    client_ids: list[str] | None,
    document_filter: dict[str, list[str]],
    per_page: int,
    requests_per_minute: int,
    concurrency: int,
) -> Iterator[Any]:
    """Clients, then documents client by client (in parallel), as canonical Arrow batches."""
    stats = start_run(NAME, account)
    api = ApiClient(
        NAME,
        account,
        base_url,
        auth=QueryParamAuth("api_key", api_key),
        auth_hint=(
            "check SOURCES__INVOICEXPRESS__API_KEY (api_key under [sources.invoicexpress] in "
            f".dlt/secrets.toml) is the key of account '{account}': "
            "https://www.app.invoicexpress.com/users/api"
        ),
        headers={"Content-Type": "application/json"},
        budget=RateBudget(requests_per_minute),
        stats=stats,
        max_connections=concurrency + 2,
        error_message=error_message,
    )
    writer = TableWriter()
    with api:
        listed = [
            client
            for page in paginate_numbered(
                api,
                "/clients.json",
                PageNumberPaginator(per_page, _pagination),
                _records("clients"),
                workers=concurrency,
            )
            for client in page.items
        ]
        if client_ids is not None:
            wanted = set(client_ids)
            listed = [c for c in listed if to_text(c.get("id")) in wanted]
            known = {to_text(c.get("id")) for c in listed}
            targets = [c for c in client_ids if c in known] + [c for c in client_ids if c not in known]
        else:
            targets = [to_text(c.get("id")) or "" for c in listed]
        for client in listed:
            try:
                yield from writer.add_client(map_client(client, account))
                stats.add(clients=1)
            except ValueProblem as problem:
                stats.skip(f"client not mapped: {problem}", to_text(client.get("name")))
        targets = [t for t in targets if t]
        stats.clients_total = len(targets)

        def documents(client_id: str) -> list[dict[str, Any]] | None:
            try:
                return [
                    document
                    for page in paginate(
                        api,
                        f"/clients/{client_id}/invoices.json",
                        PageNumberPaginator(per_page, _pagination),
                        _records("invoices"),
                        method="POST",
                        json={"filter": document_filter},
                        idempotent=True,  # a POST that only reads (docs/providers.md §1.3)
                    )
                    for document in page.items
                ]
            except NotFoundError:
                return None

        for client_id, found in bounded_map(documents, targets, concurrency):
            if found is None:
                stats.skip("client not found (404) when listing its documents", client_id)
            else:
                for document in found:
                    yield from _write(writer, document, account, stats)
            stats.add(clients_done=1)
    yield from writer.flush()


def _write(writer: TableWriter, document: dict[str, Any], account: str, stats: RunStats) -> Iterator[Any]:
    try:
        mapped = map_invoice(document, account)
    except ValueProblem as problem:
        stats.skip(f"document not mapped: {problem}", to_text(document.get("id")))
        return
    yield from write_invoice(writer, mapped, stats)


PROVIDER = Provider(
    name=NAME,
    title=TITLE,
    secrets=("api_key",),
    required_config=("account_name",),
    source=invoicexpress,
)
