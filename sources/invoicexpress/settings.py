"""InvoiceXpress constants (docs/providers.md §1)."""

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
