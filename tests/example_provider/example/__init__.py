"""Example Books: a made-up invoicing API (tests/example_provider/fake_api.py), loaded as any provider is."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sources.shared.declaration import Api
from sources.shared.driver import Account, require
from sources.shared.provider import Provider
from tests.example_provider.example.api import API
from tests.example_provider.example.settings import DEFAULT_BASE_URL, NAME, SETTINGS, TITLE


def account(values: Mapping[str, Any]) -> tuple[Api, Account]:
    """One Example Books account's `Api` and `Account` from its settings."""
    label = require(NAME, None, values["account"], "account")
    per_page = int(values["per_page"])
    api = dataclasses.replace(
        API,
        clients=dataclasses.replace(API.clients, page_size=per_page),
        invoices=dataclasses.replace(API.invoices, page_size=per_page),
    )
    return api, Account(
        label=label,
        base_url=values["base_url"] or DEFAULT_BASE_URL,
        secrets={"api_key": values["api_key"]},
        requests_per_minute=values["requests_per_minute"],
    )


PROVIDER = Provider(name=NAME, title=TITLE, api=API, settings=SETTINGS, account=account)
