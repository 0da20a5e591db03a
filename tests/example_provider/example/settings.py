"""Example Books constants, as the fake API's docstring (tests/example_provider/fake_api.py) describes it."""

from __future__ import annotations

from sources.shared.declaration import REQUIRED, Setting

NAME = "example"
TITLE = "Example Books"

# fake_api.py, "Base URL": one API root for every account; the account is the key's.
DEFAULT_BASE_URL = "https://api.example-books.invalid/v1"

# fake_api.py, "Paging": `per_page` up to 100, the size served is read back from `pagination.per_page`.
DEFAULT_PAGE_SIZE = 100

# fake_api.py, "Limits": no budget documented; 429 with Retry-After is honoured.
DEFAULT_REQUESTS_PER_MINUTE: float | None = None

API_KEY = Setting("api_key", REQUIRED, secret=True, help="the account's API key")
ACCOUNT = Setting("account", REQUIRED, account=True, help="the `account` value of every row")
BASE_URL = Setting("base_url", help="the API root; default `https://api.example-books.invalid/v1`")
PER_PAGE = Setting("per_page", DEFAULT_PAGE_SIZE, type=int, help="page size asked for")
REQUESTS_PER_MINUTE = Setting("requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE, type=float, help="a proactive budget")
SETTINGS = (API_KEY, ACCOUNT, BASE_URL, PER_PAGE, REQUESTS_PER_MINUTE)
