"""Flow Payroll constants: documented hosts, paging and token renewal."""

from __future__ import annotations

PROVIDER_NAME = "flowpayroll"
TITLE = "Flow Payroll"

# docs/providers.md §2.1 [DOC]: live hosts; the sandbox hosts are api.sandbox. / auth.sandbox.
BASE_URL = "https://api.flowpayroll.ai/v1/billing"
TOKEN_URL = "https://auth.flowpayroll.ai/oauth2/token"
SANDBOX_BASE_URL = "https://api.sandbox.flowpayroll.ai/v1/billing"
SANDBOX_TOKEN_URL = "https://auth.sandbox.flowpayroll.ai/oauth2/token"

# docs/providers.md §2.1 [DOC]: renew the token when about 10% of its lifetime remains.
TOKEN_RENEW_FRACTION = 0.1
# docs/providers.md §2.1 [DOC]: the documented lifetime, used when a token response omits expires_in.
DEFAULT_TOKEN_LIFETIME = 3600

# docs/providers.md §2.3 [INF]: invoices embed their lines, so pages stay modest under the 10 MB cap.
INVOICE_PAGE_SIZE = 50
# docs/providers.md §2.2 [INF]: List Clients is assumed to page like the other billing listings.
CLIENT_PAGE_SIZE = 100
# Per-client invoice listings in flight at once; the listing is per client only (§2.3).
WORKERS = 4

# docs/providers.md §2.5 [DOC]: the documented example formats, used when a response has no metadata.
DEFAULT_DATE_FORMAT = "yyyy-MM-dd"
DEFAULT_DATETIME_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.fffZ"

SECRET_KEYS = ("client_id", "client_secret")


def auth_hint() -> str:
    """What to check when the token endpoint or the API refuses the credentials."""
    env = ", ".join(f"SOURCES__{PROVIDER_NAME.upper()}__{key.upper()}" for key in SECRET_KEYS)
    return (
        f"check client_id and client_secret in [sources.{PROVIDER_NAME}] of .dlt/secrets.toml "
        f"(or {env}), and token_url for the environment the credentials belong to"
    )
