"""The Kitchen API as the shared driver reads it (docs/providers.md §3)."""

from __future__ import annotations

from typing import Any

from sources.kitchen import mapping
from sources.kitchen.settings import API_KEY, DEFAULT_CONCURRENCY, DEFAULT_PAGE_SIZE, NAME, STATES
from sources.shared.declaration import Api, Context, HeaderKey, Listing, Mappers, PageNumber, UpdatedAt
from sources.shared.model import MappedInvoice
from sources.shared.values import to_text

# docs/providers.md §3.3 [DOC sample]: Laravel resource collections, `data` + `links` + `meta`.
# The next page is built from the page number: `links.next` is relative on one doc page and
# absolute on another.
LARAVEL = PageNumber(total_path="meta.last_page", current_path="meta.current_page", size_path="meta.per_page")


def _invoice(record: Any, ctx: Context) -> MappedInvoice:
    # docs/providers.md §3.3 [DOC]: an invoice carries only its client's id; the name comes
    # from the clients listing.
    return mapping.map_invoice(record, ctx.account, ctx.client_names)


API = Api(
    provider=NAME,
    auth=HeaderKey("Authorization", API_KEY, scheme="Bearer"),
    # docs/providers.md §3.1 [DOC/INF]: without these two headers Laravel answers an
    # unauthenticated call with a redirect to its login page instead of a JSON 401.
    headers={"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"},
    is_login_redirect=lambda location: "/login" in location.lower(),
    concurrency=DEFAULT_CONCURRENCY,
    auth_help="it must be a key of this workspace (Settings → API), and workspace must name that workspace",
    clients=Listing(
        "/clients",
        records="data",
        paging=LARAVEL,
        page_size=DEFAULT_PAGE_SIZE,
        # docs/providers.md §3.2 [DOC]: clients carry `updated_at`; an unchanged one is not rewritten.
        cursor=UpdatedAt("client_updated_at"),
    ),
    invoices=Listing(
        "/invoices",
        records="data",
        paging=LARAVEL,
        page_size=DEFAULT_PAGE_SIZE,
        # docs/providers.md §3.3 [DOC]: newest-created first and paged by offset, so an invoice
        # created or deleted during the scan shifts the pages; `meta.total` changing between
        # pages shows it.
        total_path="meta.total",
        # docs/providers.md §3.3 [INF]: no update filter, so every page is read and only invoices
        # whose `updated_at` moved are written.
        cursor=UpdatedAt("updated_at"),
        # docs/providers.md §3.5 [3P]: Laravel validation errors; the body names the field.
        status_hints={422: f"check state ({', '.join(STATES)}) and per_page in [sources.{NAME}]"},
    ),
    mapping=Mappers(
        lines=mapping.LINES,
        reads=mapping.READS,
        client=lambda record, ctx: mapping.map_client(record, ctx.account),
        invoice=_invoice,
        invoice_updated_at=lambda record, ctx: mapping.invoice_updated_at(record),
        invoice_client=lambda record: to_text(record.get("client")),
    ),
    error_message=mapping.error_message,
)
