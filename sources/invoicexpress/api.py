"""The InvoiceXpress API as the shared driver reads it (docs/providers.md §1)."""

from __future__ import annotations

from sources.invoicexpress import mapping
from sources.invoicexpress.settings import (
    API_KEY,
    DEFAULT_CONCURRENCY,
    DEFAULT_PAGE_SIZE,
    DEFAULT_REQUESTS_PER_MINUTE,
    NAME,
)
from sources.shared.declaration import Api, FullListing, Listing, Mappers, PageNumber, QueryKey

# docs/providers.md §1.3 [DOC]: `pagination{current_page, total_pages, per_page}`; the account's
# own page-size setting may override what was asked for, so the size is read back.
PAGINATION = PageNumber(
    total_path="pagination.total_pages", current_path="pagination.current_page", size_path="pagination.per_page"
)

API = Api(
    provider=NAME,
    # docs/providers.md §1.1 [DOC]: the key travels in the query string (redacted everywhere).
    auth=QueryKey("api_key", API_KEY),
    headers={"Content-Type": "application/json"},
    error_message=mapping.error_message,
    auth_help="it must be the key of this account: https://www.app.invoicexpress.com/users/api",
    requests_per_minute=DEFAULT_REQUESTS_PER_MINUTE,
    concurrency=DEFAULT_CONCURRENCY,
    clients=Listing(
        "/clients.json", records="clients", paging=PAGINATION, page_size=DEFAULT_PAGE_SIZE, parallel_pages=True
    ),
    invoices=Listing(
        "/clients/{client_id}/invoices.json",
        records="invoices",
        paging=PAGINATION,
        page_size=DEFAULT_PAGE_SIZE,
        # docs/providers.md §1.3 [DOC]: a POST that only reads, with the filter in its body.
        method="POST",
        read_only_post=True,
        # docs/providers.md §1.3 [DOC]: no change filter: every run re-reads every client.
        cursor=FullListing(),
    ),
    mapping=Mappers(
        lines=mapping.LINES,
        reads=mapping.READS,
        client=lambda record, ctx: mapping.map_client(record, ctx.account),
        invoice=lambda record, ctx: mapping.map_invoice(record, ctx.account),
    ),
)
