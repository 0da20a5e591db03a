"""The Fohlio API as the shared driver reads it (docs/providers.md §4)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sources.fohlio import mapping
from sources.fohlio.settings import API_KEY, DEFAULT_CONCURRENCY, DEFAULT_OVERLAP_SECONDS, DEFAULT_PAGE_SIZE, NAME
from sources.shared.declaration import (
    Api,
    Context,
    HeaderKey,
    ListedSince,
    Listing,
    Lookup,
    Mappers,
    PageNumber,
    UpdatedSince,
)
from sources.shared.model import MappedInvoice
from sources.shared.provider import config_key
from sources.shared.values import ValueProblem, parse_timestamp

OVERLAP = dt.timedelta(seconds=DEFAULT_OVERLAP_SECONDS)
# docs/providers.md §4.2/§4.3 [DOC]: listings are bare JSON arrays that end on a short page.
BARE_ARRAY = PageNumber()
# Contacts document no timestamp, so their mark is the start of the previous complete listing.
CLIENTS_CURSOR = ListedSince("updated_since", OVERLAP, state_key="contacts_listed_at")
# docs/providers.md §4.3 [DOC]: `updated_since` (Unix seconds) filters invoices by update time.
# No listing of ids alone is documented, so a sweep (docs/canonical-model.md, "Deletions") reads
# these same listings without `updated_since`, at the largest page size (docs/providers.md §5,
# "Finding deletions").
INVOICES_CURSOR = UpdatedSince("updated_since", OVERLAP, state_key="invoices")


def _invoice(record: Any, ctx: Context) -> MappedInvoice:
    try:
        currency = mapping.resolve_currency(record, ctx.lookup("projects"), ctx.options.get("currency"))
    except ValueProblem as problem:
        raise ValueProblem(f"{problem} (set {config_key(NAME, 'currency')})") from problem
    return mapping.map_invoice(record, provider=NAME, account=ctx.account, currency=currency)


def _is_client(record: Any) -> bool:
    # docs/providers.md §4.2 [DOC]: an API that ignored `category_types[]` must still not turn
    # suppliers into clients.
    return isinstance(record, dict) and "client" in mapping.client_categories(record)


API = Api(
    provider=NAME,
    # docs/providers.md §4.1 [DOC]: the token goes raw in `authorization`; `auth_scheme` adds a word.
    auth=HeaderKey("authorization", API_KEY),
    concurrency=DEFAULT_CONCURRENCY,
    error_message=mapping.error_message,
    auth_help="auth_scheme (env SOURCES__FOHLIO__AUTH_SCHEME): empty sends the raw token, Bearer prefixes it",
    clients=Listing(
        "/contacts",
        paging=BARE_ARRAY,
        page_size=DEFAULT_PAGE_SIZE,
        # docs/providers.md §4.2 [DOC]: `category_types[]` is a PHP-style array parameter.
        params={"category_types[]": ["client"]},
        keep=_is_client,
        cursor=CLIENTS_CURSOR,
    ),
    invoices=Listing(
        "/client_invoices",
        paging=BARE_ARRAY,
        page_size=DEFAULT_PAGE_SIZE,
        cursor=INVOICES_CURSOR,
    ),
    # docs/providers.md §4.4 [DOC team dump]: project currencies, read once and only when needed.
    lookups={"projects": Lookup("/team", read=mapping.project_currencies, missing_ok=True)},
    mapping=Mappers(
        lines=mapping.LINES,
        reads=mapping.READS,
        client=lambda record, ctx: mapping.map_client(record, provider=NAME, account=ctx.account),
        invoice=_invoice,
        invoice_updated_at=lambda record, ctx: parse_timestamp(record.get("updated_at"), field="updated_at"),
    ),
)
