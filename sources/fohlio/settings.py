"""Fohlio constants (apidocs.fohlio.com; docs/providers.md §4)."""

from __future__ import annotations

from sources.shared.declaration import REQUIRED, Setting

NAME = "fohlio"
TITLE = "Fohlio"
DEFAULT_BASE_URL = "https://app.fohlio.com/be/openapi"
DEFAULT_ACCOUNT = "default"

# docs/providers.md §4.2 [DOC]: per_page defaults to 25 and may not exceed 100.
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = MAX_PAGE_SIZE
# Two account-wide listings read page after page.
DEFAULT_CONCURRENCY = 1
# docs/providers.md §4.5 [INF]: no documented budget; 429 with Retry-After is honoured.
DEFAULT_REQUESTS_PER_MINUTE: float | None = None
# How far before the previous high-water mark the next run asks again, so that a change
# committed while the previous run was listing is not missed.
DEFAULT_OVERLAP_SECONDS = 600
# docs/canonical-model.md, "Deletions": incremental listings are swept in full weekly.
DEFAULT_RECONCILE_EVERY_DAYS = 7.0

API_KEY = Setting("api_key", REQUIRED, secret=True, help="the API token, sent in the `authorization` header")
ACCOUNT = Setting(
    "account", DEFAULT_ACCOUNT, account=True, help="the label stored in the `account` column (the team, as you name it)"
)
BASE_URL = Setting("base_url", DEFAULT_BASE_URL, help="the API root")
AUTH_SCHEME = Setting("auth_scheme", "", help="empty sends the raw token; `Bearer` sends `Bearer <token>`")
CURRENCY = Setting("currency", help="ISO code used when neither the invoice's project nor its client sets a currency")
PROJECT_ID = Setting("project_id", help="load only this project's invoices")
OVERLAP_SECONDS = Setting(
    "overlap_seconds",
    DEFAULT_OVERLAP_SECONDS,
    type=int,
    help="how far before the previous mark the next run asks again for changes",
)
PER_PAGE = Setting("per_page", MAX_PAGE_SIZE, type=int, help=f"page size of both listings (1 to {MAX_PAGE_SIZE})")
REQUESTS_PER_MINUTE = Setting(
    "requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE, type=float, help="a proactive budget; unset relies on 429"
)
RECONCILE_EVERY_DAYS = Setting(
    "reconcile_every_days",
    DEFAULT_RECONCILE_EVERY_DAYS,
    type=float,
    help="days between two full sweeps that find deletions (0: every run)",
)
CONCURRENCY = Setting(
    "concurrency", DEFAULT_CONCURRENCY, type=int, help="pages fetched in parallel once the page count is known"
)
SETTINGS = (
    API_KEY,
    ACCOUNT,
    BASE_URL,
    AUTH_SCHEME,
    CURRENCY,
    PROJECT_ID,
    OVERLAP_SECONDS,
    PER_PAGE,
    REQUESTS_PER_MINUTE,
    RECONCILE_EVERY_DAYS,
    CONCURRENCY,
)
