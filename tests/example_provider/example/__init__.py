"""Example Books: a made-up invoicing API (tests/example_provider/fake_api.py), loaded as any provider is."""

from __future__ import annotations

import dataclasses
from typing import Any

import dlt
import httpx

from sources.shared.driver import Account, billing_resource, require
from sources.shared.provider import Provider
from tests.example_provider.example.api import API
from tests.example_provider.example.settings import DEFAULT_BASE_URL, DEFAULT_PAGE_SIZE, NAME, TITLE


@dlt.source(name=NAME, section=NAME)
def example(
    api_key: str = dlt.secrets.value,
    account: str = dlt.config.value,
    base_url: str | None = None,
    per_page: int = DEFAULT_PAGE_SIZE,
    requests_per_minute: float | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Any:
    """Load one Example Books account: its clients and its invoices with their lines.

    Args:
        api_key: the account's API key (`[sources.example] api_key`, env SOURCES__EXAMPLE__API_KEY).
        account: the `account` value of every row.
        base_url: the API root; default `https://api.example-books.invalid/v1`.
        per_page: page size asked for.
        requests_per_minute: a proactive request budget; None (default) relies on 429 + Retry-After.
        transport: an httpx transport for every request (tests serve the fake API in-process).

    Returns:
        The `example_billing` resource, which fills the three canonical tables.
    """
    label = require(NAME, None, account, "account")
    api = dataclasses.replace(
        API,
        clients=dataclasses.replace(API.clients, page_size=int(per_page)),
        invoices=dataclasses.replace(API.invoices, page_size=int(per_page)),
    )
    return billing_resource(
        api,
        Account(
            label=label,
            base_url=base_url or DEFAULT_BASE_URL,
            secrets={"api_key": api_key},
            requests_per_minute=requests_per_minute,
            transport=transport,
        ),
    )


PROVIDER = Provider(name=NAME, title=TITLE, secrets=("api_key",), required_config=("account",), source=example)
