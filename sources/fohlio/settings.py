"""Fohlio constants (apidocs.fohlio.com; docs/providers.md §4)."""

from __future__ import annotations

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
