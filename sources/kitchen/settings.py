"""Constants of the Kitchen (kitchen.co) API, as docs/providers.md §3 describes it."""

from __future__ import annotations

PROVIDER_NAME = "kitchen"
TITLE = "Kitchen"

# docs/providers.md §3.1 [DOC]: one subdomain per workspace.
DEFAULT_BASE_URL = "https://{workspace}.kitchen.co/api"

CLIENTS_PATH = "/clients"
INVOICES_PATH = "/invoices"

# docs/providers.md §3.1 [DOC/INF]: without these two headers Laravel answers an unauthenticated
# call with a redirect to its login page instead of a JSON 401.
JSON_HEADERS = {"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"}

# docs/providers.md §3.3 [DOC]: the API's default state, `active`, silently leaves archived invoices out.
DEFAULT_STATE = "all"
STATES = ("all", "active", "archived")

# docs/providers.md §3.3 [DOC sample]: the API's default page size is 20; its maximum is unknown, and
# the paginator reads the size actually used back from `meta.per_page`.
DEFAULT_PER_PAGE = 100

SECRETS = ("api_key",)
REQUIRED_CONFIG = ("workspace",)
