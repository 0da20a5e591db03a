"""Flow Payroll's declaration run by the shared driver against the sandbox over real HTTP:
token paging, the token endpoint called once, a repeated token stopping the listing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sandbox.flowpayroll import create_app
from sources.flowpayroll.api import API
from sources.shared.driver import Account, billing_resource
from sources.shared.errors import PaginationLoopError
from tests.support import load_source, serve


def source_for(app, url: str, clients_page: int = 4, invoices_page: int = 2):
    env = app.pipeline_env(url)
    api = dataclasses.replace(
        API,
        clients=dataclasses.replace(API.clients, page_size=clients_page),
        invoices=dataclasses.replace(API.invoices, page_size=invoices_page),
    )
    account = Account(
        label=None,
        base_url=env["SOURCES__FLOWPAYROLL__BASE_URL"],
        token_url=env["SOURCES__FLOWPAYROLL__TOKEN_URL"],
        secrets={"client_id": app.client_id, "client_secret": app.client_secret},
    )
    return billing_resource(api, account)


def test_listings_read_every_page_and_the_token_endpoint_once(tmp_path: Path) -> None:
    app = create_app()
    with serve(app) as server:
        loaded = load_source(source_for(app, server.url), tmp_path, "flowpayroll")
    assert loaded.stats.invoices == app.summary()["invoices"]
    assert loaded.stats.account == app.organisation_id
    assert app.tokens_issued == 1
    client_pages = [e for e in app.log.entries() if e.path == "/v1/billing/clients"]
    assert len(client_pages) == -(-len(app.clients) // 4)
    expected = sum(max(1, -(-len(app.invoices_of(c)) // 2)) for c in app.clients)
    invoice_pages = [e for e in app.log.entries() if e.path.startswith("/v1/billing/clients/")]
    assert len(invoice_pages) == expected


def test_a_repeated_page_token_is_an_error_not_a_loop(tmp_path: Path) -> None:
    app = create_app(repeat_token=True)
    with serve(app) as server, pytest.raises(PaginationLoopError, match="requested twice"):
        load_source(source_for(app, server.url, clients_page=1, invoices_page=1), tmp_path, "flowpayroll")
