"""Example Books constants, as the fake API's docstring (tests/example_provider/fake_api.py) describes it."""

from __future__ import annotations

NAME = "example"
TITLE = "Example Books"

# fake_api.py, "Base URL": one API root for every account; the account is the key's.
DEFAULT_BASE_URL = "https://api.example-books.invalid/v1"

# fake_api.py, "Paging": `per_page` up to 100, the size served is read back from `pagination.per_page`.
DEFAULT_PAGE_SIZE = 100

# fake_api.py, "Limits": no budget documented; 429 with Retry-After is honoured.
DEFAULT_REQUESTS_PER_MINUTE: float | None = None
