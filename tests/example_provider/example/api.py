"""The Example Books API as the shared driver reads it (tests/example_provider/fake_api.py)."""

from __future__ import annotations

from typing import Any

from sources.shared.declaration import Api, Context, HeaderKey, Listing, Mappers, PageNumber, UpdatedAt
from sources.shared.model import MappedInvoice
from sources.shared.values import to_text
from tests.example_provider.example import mapping
from tests.example_provider.example.settings import API_KEY, DEFAULT_PAGE_SIZE, DEFAULT_REQUESTS_PER_MINUTE, NAME

# fake_api.py, "Paging": page numbers, with the page count and the size served in `pagination`.
PAGES = PageNumber(
    total_path="pagination.total_pages", current_path="pagination.current_page", size_path="pagination.per_page"
)


def _invoice(record: Any, ctx: Context) -> MappedInvoice:
    return mapping.map_invoice(record, ctx.account, ctx.client_names)


API = Api(
    provider=NAME,
    # fake_api.py, "Auth": the key in an `X-Api-Key` header, raw.
    auth=HeaderKey("X-Api-Key", API_KEY),
    headers={"Accept": "application/json"},
    requests_per_minute=DEFAULT_REQUESTS_PER_MINUTE,
    concurrency=1,
    auth_help="create a key under Settings → API keys",
    clients=Listing("/clients", records="clients", paging=PAGES, page_size=DEFAULT_PAGE_SIZE),
    invoices=Listing(
        "/invoices",
        records="invoices",
        paging=PAGES,
        page_size=DEFAULT_PAGE_SIZE,
        # fake_api.py, "Invoices": no update filter, but every invoice has `updated_at`.
        cursor=UpdatedAt("updated_at"),
    ),
    mapping=Mappers(
        lines=mapping.LINES,
        client=lambda record, ctx: mapping.map_client(record, ctx.account),
        invoice=_invoice,
        invoice_updated_at=lambda record, ctx: mapping.invoice_updated_at(record),
        invoice_client=lambda record: to_text(record.get("client_id")),
    ),
    error_message=mapping.error_message,
)
