"""Constants of the Fohlio source (apidocs.fohlio.com; docs/providers.md §4)."""

from __future__ import annotations

PROVIDER_NAME = "fohlio"
TITLE = "Fohlio"
BASE_URL = "https://app.fohlio.com/be/openapi"
AUTH_HEADER = "authorization"
DEFAULT_ACCOUNT = "default"

CONTACTS_PATH = "/contacts"
INVOICES_PATH = "/client_invoices"
TEAM_PATH = "/team"

# docs/providers.md §4.2 [DOC]: per_page defaults to 25 and may not exceed 100.
MAX_PER_PAGE = 100
# How far before the previous high-water mark the next run asks again, so that a change
# committed while the previous run was listing is not missed.
DEFAULT_OVERLAP_SECONDS = 600
