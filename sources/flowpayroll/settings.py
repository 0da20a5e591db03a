"""Flow Payroll constants: documented hosts, paging and token renewal (docs/providers.md §2)."""

from __future__ import annotations

from sources.shared.declaration import REQUIRED, Setting

NAME = "flowpayroll"
TITLE = "Flow Payroll"

# docs/providers.md §2.1 [DOC]: live hosts; the sandbox hosts are api.sandbox. / auth.sandbox.
DEFAULT_BASE_URL = "https://api.flowpayroll.ai/v1/billing"
DEFAULT_TOKEN_URL = "https://auth.flowpayroll.ai/oauth2/token"

# docs/providers.md §2.1 [DOC]: renew the token when about 10% of its lifetime remains.
TOKEN_RENEW_FRACTION = 0.1
# docs/providers.md §2.1 [DOC]: the documented lifetime, used when a token response omits expires_in.
DEFAULT_TOKEN_LIFETIME = 3600

# docs/providers.md §2.3 [INF]: invoices embed their lines, so pages stay modest under the 10 MB cap.
DEFAULT_PAGE_SIZE = 50
# docs/providers.md §2.2 [INF]: List Clients is assumed to page like the other billing listings.
CLIENT_PAGE_SIZE = 100
# Per-client invoice listings in flight at once; the listing is per client only (§2.3).
DEFAULT_CONCURRENCY = 4
# docs/providers.md §2.5 [INF]: no documented budget; 429 with Retry-After is honoured.
DEFAULT_REQUESTS_PER_MINUTE: float | None = None

# docs/providers.md §2.5 [DOC]: the documented example formats, used when a response has no metadata.
DEFAULT_DATE_FORMAT = "yyyy-MM-dd"
DEFAULT_DATETIME_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.fffZ"

CLIENT_ID = Setting("client_id", REQUIRED, secret=True, help="OAuth client id")
CLIENT_SECRET = Setting("client_secret", REQUIRED, secret=True, help="OAuth client secret")
ACCOUNT = Setting(
    "account",
    account=True,
    help="label stored in the `account` column and keying the incremental state; default: the organisation id",
)
BASE_URL = Setting(
    "base_url",
    DEFAULT_BASE_URL,
    help="the Billing service root (`https://api.sandbox.flowpayroll.ai/v1/billing` for the sandbox environment)",
)
TOKEN_URL = Setting(
    "token_url",
    DEFAULT_TOKEN_URL,
    help="the OAuth token endpoint (`https://auth.sandbox.flowpayroll.ai/oauth2/token` for the sandbox environment)",
)
REQUESTS_PER_MINUTE = Setting(
    "requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE, type=float, help="a proactive budget; unset relies on 429"
)
CONCURRENCY = Setting(
    "concurrency", DEFAULT_CONCURRENCY, type=int, help="clients whose invoices are listed in parallel"
)
SETTINGS = (CLIENT_ID, CLIENT_SECRET, ACCOUNT, BASE_URL, TOKEN_URL, REQUESTS_PER_MINUTE, CONCURRENCY)
