"""Kitchen (kitchen.co): its constants and settings, as docs/providers.md §3 describes the API."""

from __future__ import annotations

from sources.shared.declaration import REQUIRED, Setting

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

API_KEY = Setting("api_key", REQUIRED, secret=True, help="the workspace's API key (Settings → API → Create API Key)")
WORKSPACE = Setting(
    "workspace", REQUIRED, account=True, help="the workspace subdomain (`acme` for acme.kitchen.co); the `account`"
)
BASE_URL = Setting("base_url", help="the API root; default `https://{workspace}.kitchen.co/api` (a proxy or sandbox)")
STATE = Setting(
    "state", DEFAULT_STATE, help="`all`, `active` or `archived`; the API's own default, `active`, leaves archived out"
)
PER_PAGE = Setting(
    "per_page", DEFAULT_PAGE_SIZE, type=int, help="page size asked for (the API's own default is 20; maximum unknown)"
)
# docs/providers.md §3.5 [INF]: no documented budget; 429 with Retry-After is honoured.
REQUESTS_PER_MINUTE = Setting(
    "requests_per_minute", None, type=float, help="a proactive budget; unset relies on 429 + `Retry-After`"
)
CONCURRENCY = Setting(
    "concurrency", DEFAULT_CONCURRENCY, type=int, help="pages fetched in parallel once the page count is known"
)
SETTINGS = (API_KEY, WORKSPACE, BASE_URL, STATE, PER_PAGE, REQUESTS_PER_MINUTE, CONCURRENCY)
