"""InvoiceXpress constants and settings (docs/providers.md §1)."""

from __future__ import annotations

from sources.shared.declaration import REQUIRED, Setting

NAME = "invoicexpress"
TITLE = "InvoiceXpress"
DEFAULT_BASE_URL = "https://{account_name}.app.invoicexpress.com"
# docs/providers.md §1.5 [DOC]: 780 requests a minute per account. Stay under that budget, as one
# public client does (95 %), so a run never meets 429s.
DEFAULT_REQUESTS_PER_MINUTE = 740
DEFAULT_PAGE_SIZE = 30  # the largest documented account setting; the page size is read back
# Enough requests in flight to hide latency; the request budget still caps the rate.
DEFAULT_CONCURRENCY = 16
ARCHIVED_BOTH = ("archived", "non_archived")

API_KEY = Setting(
    "api_key",
    REQUIRED,
    secret=True,
    help="the API key (https://www.app.invoicexpress.com/users/api); it travels in the query string, redacted",
)
ACCOUNT_NAME = Setting(
    "account_name",
    REQUIRED,
    account=True,
    help="the account subdomain (`acme` in acme.app.invoicexpress.com); the `account` of every row",
)
BASE_URL = Setting("base_url", help="the API root; default `https://{account_name}.app.invoicexpress.com`")
CLIENT_IDS = Setting("client_ids", type=list, help="load only these clients (ids as text)")
STATUSES = Setting("statuses", type=list, help="the `filter.status` list sent to the API; default: every status")
DOCUMENT_TYPES = Setting(
    "document_types", type=list, help="the `filter.by_type` list (`Invoice`, `CreditNote`, ...); default: all"
)
ARCHIVED = Setting(
    "archived", ARCHIVED_BOTH, type=list, help="the `filter.archived` list; default both archived and not"
)
PER_PAGE = Setting("per_page", DEFAULT_PAGE_SIZE, type=int, help="page size asked for; the size served is read back")
REQUESTS_PER_MINUTE = Setting(
    "requests_per_minute",
    DEFAULT_REQUESTS_PER_MINUTE,
    type=float,
    help="proactive budget (documented limit: 780 a minute); `0` disables it",
)
CONCURRENCY = Setting("concurrency", DEFAULT_CONCURRENCY, type=int, help="clients whose documents are listed at once")
SETTINGS = (
    API_KEY,
    ACCOUNT_NAME,
    BASE_URL,
    CLIENT_IDS,
    STATUSES,
    DOCUMENT_TYPES,
    ARCHIVED,
    PER_PAGE,
    REQUESTS_PER_MINUTE,
    CONCURRENCY,
)
