"""Kitchen (kitchen.co) constants, as docs/providers.md §3 describes the API."""

from __future__ import annotations

NAME = "kitchen"
TITLE = "Kitchen"

# docs/providers.md §3.1 [DOC]: one subdomain per workspace.
DEFAULT_BASE_URL = "https://{workspace}.kitchen.co/api"

# docs/providers.md §3.3 [DOC]: the API's default state, `active`, silently leaves archived invoices out.
DEFAULT_STATE = "all"
STATES = ("all", "active", "archived")

# docs/providers.md §3.3 [DOC sample]: the API's default page size is 20; its maximum is unknown,
# and the paginator reads the size actually used back from `meta.per_page`.
DEFAULT_PAGE_SIZE = 100
# One account-wide invoice listing: pages are read one after another.
DEFAULT_CONCURRENCY = 1
# docs/providers.md §3.5 [INF]: no documented budget; 429 with Retry-After is honoured.
DEFAULT_REQUESTS_PER_MINUTE: float | None = None
