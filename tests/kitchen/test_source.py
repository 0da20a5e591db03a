"""The source's HTTP side against the sandbox over real HTTP: headers, paging, errors."""

from __future__ import annotations

import pytest

from sandbox.kitchen import create_app
from sources.kitchen import InvoiceListing, list_clients, make_client
from sources.shared.errors import AuthenticationError, ConfigurationError, HttpStatusError
from tests.support import serve

KEY = "kt_test_5d8e1b2a3c4f"


def test_lists_every_client_and_invoice_across_pages_with_state_all() -> None:
    app = create_app(api_key=KEY, clients=7, invoices=23)
    with serve(app) as server, make_client(KEY, "acme", f"{server.url}/api") as client:
        clients = list(list_clients(client, per_page=3))
        listing = InvoiceListing(client, per_page=5)
        invoices = list(listing)
    assert [c["id"] for c in clients] == [
        c["id"] for c in sorted(app.clients, key=lambda c: c["created_at"], reverse=True)
    ]
    assert {i["id"] for i in invoices} == {i["id"] for i in app.invoices}
    assert len(invoices) == 23 and listing.stable and listing.duplicates == 0
    pages = [e for e in app.log.entries() if e.path == "/api/invoices"]
    assert [e.query["page"] for e in pages] == [["1"], ["2"], ["3"], ["4"], ["5"]]
    assert all(e.query["state"] == ["all"] and e.query["per_page"] == ["5"] for e in pages)


def test_page_size_is_read_back_from_meta() -> None:
    app = create_app(api_key=KEY, invoices=130)
    with serve(app) as server, make_client(KEY, "acme", f"{server.url}/api") as client:
        invoices = list(InvoiceListing(client, per_page=500))
    assert len(invoices) == 130
    assert app.log.count(path_prefix="/api/invoices") == 2


def test_an_invoice_created_during_the_scan_is_not_listed_twice_and_the_scan_is_unstable() -> None:
    app = create_app(api_key=KEY, invoices=12)
    with serve(app) as server, make_client(KEY, "acme", f"{server.url}/api") as client:
        listing = InvoiceListing(client, per_page=5)
        seen = []
        for number, invoice in enumerate(listing):
            seen.append(invoice["id"])
            if number == 0:
                app.create_invoice(app.clients[0]["id"])
    assert len(seen) == len(set(seen)) == 12
    assert listing.duplicates == 1
    assert not listing.stable


def test_state_is_sent_as_configured() -> None:
    app = create_app(api_key=KEY, invoices=20)
    archived = {i["id"] for i in app.invoices if i["archived_at"]}
    with serve(app) as server, make_client(KEY, "acme", f"{server.url}/api") as client:
        active = {i["id"] for i in InvoiceListing(client, state="active")}
    assert archived and not archived & active and len(active) == 20 - len(archived)


def test_bad_key_is_an_authentication_error_naming_the_key() -> None:
    app = create_app(api_key=KEY)
    with (
        serve(app) as server,
        make_client("wrong-key-0001", "acme", f"{server.url}/api") as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        list(list_clients(client))
    message = str(caught.value)
    assert caught.value.status == 401
    assert "kitchen [acme]" in message and "Unauthenticated." in message
    assert "SOURCES__KITCHEN__API_KEY" in message and "wrong-key-0001" not in message


def test_redirect_to_login_is_an_authentication_error_not_data() -> None:
    app = create_app(api_key=KEY, workspace="acme", honour_json_headers=False)
    with (
        serve(app) as server,
        make_client("wrong-key-0002", "acme", f"{server.url}/api") as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        list(InvoiceListing(client))
    assert caught.value.status == 302
    assert "login page (https://acme.kitchen.co/login)" in str(caught.value)
    assert "SOURCES__KITCHEN__API_KEY" in str(caught.value)


def test_laravel_validation_body_is_in_the_error() -> None:
    app = create_app(api_key=KEY)
    with (
        serve(app) as server,
        make_client(KEY, "acme", f"{server.url}/api") as client,
        pytest.raises(HttpStatusError) as caught,
    ):
        list(InvoiceListing(client, state="everything"))
    message = str(caught.value)
    assert caught.value.status == 422
    assert '"message": "The selected state is invalid."' in message
    assert '"errors": {"state": ["The selected state is invalid."]}' in message
    assert "check state (all, active, archived)" in message


def test_429_is_retried_after_retry_after() -> None:
    app = create_app(api_key=KEY, invoices=12, requests_per_minute=2, rate_window=1)
    with serve(app) as server, make_client(KEY, "acme", f"{server.url}/api") as client:
        invoices = list(InvoiceListing(client, per_page=4))
        retries = client.stats.retries
    assert len(invoices) == 12
    assert app.log.count(status=429) >= 1 and retries == app.log.count(status=429)


def test_empty_configuration_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="workspace"):
        make_client(KEY, " ")
    with pytest.raises(ConfigurationError, match="api_key"):
        make_client("", "acme")


def test_default_base_url_is_the_workspace_subdomain() -> None:
    with make_client(KEY, "acme") as client:
        assert client.base_url == "https://acme.kitchen.co/api"
