"""Kitchen's declaration run by the shared driver against the sandbox over real HTTP: headers,
paging, listing stability, errors. In process, so the driver's own counters can be read."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sandbox.kitchen import create_app
from sources.kitchen import kitchen
from sources.shared.errors import AuthenticationError, ConfigurationError, HttpStatusError
from tests.support import load_source, serve

KEY = "kt_test_5d8e1b2a3c4f"


def invoice_requests(app):
    return [e for e in app.log.entries() if e.path == "/api/invoices"]


def test_lists_every_client_and_invoice_across_pages_with_state_all(tmp_path: Path) -> None:
    app = create_app(api_key=KEY, clients=7, invoices=23)
    with serve(app) as server:
        loaded = load_source(
            kitchen(api_key=KEY, workspace="acme", base_url=f"{server.url}/api", per_page=5), tmp_path, "kitchen"
        )
    assert loaded.stats.invoices == 23 + 1 and loaded.stats.clients == 7
    assert {r[0] for r in loaded.query("SELECT invoice_id FROM billing.invoices")} == {
        str(i["id"]) for i in app.invoices
    }
    pages = invoice_requests(app)
    assert [e.query["page"] for e in pages] == [["1"], ["2"], ["3"], ["4"], ["5"]]
    assert all(e.query["state"] == ["all"] and e.query["per_page"] == ["5"] for e in pages)
    assert [e.query["page"] for e in app.log.entries() if e.path == "/api/clients"] == [["1"], ["2"]]


def test_page_size_is_read_back_from_meta(tmp_path: Path) -> None:
    app = create_app(api_key=KEY, invoices=130)
    with serve(app) as server:
        loaded = load_source(
            kitchen(api_key=KEY, workspace="acme", base_url=f"{server.url}/api", per_page=500), tmp_path, "kitchen"
        )
    assert loaded.stats.invoices == 130 + 1  # and the published example
    assert len(invoice_requests(app)) == 2


class CreateDuringScan(httpx.HTTPTransport):
    """Creates an invoice at the sandbox right after the first invoice page was served."""

    def __init__(self, app) -> None:
        super().__init__()
        self.app, self.done = app, False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path.endswith("/invoices") and not self.done:
            self.done = True
            self.app.add_invoice(self.app.clients[0]["id"])
        return response


def test_an_invoice_created_during_the_scan_is_not_listed_twice_and_the_cursor_stays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(api_key=KEY, invoices=12)
    with serve(app) as server:
        source = kitchen(
            api_key=KEY, workspace="acme", base_url=f"{server.url}/api", per_page=5, transport=CreateDuringScan(app)
        )
        loaded = load_source(source, tmp_path, "kitchen")
    # The new invoice pushed the first page's last invoice onto page 2: seen twice, written once.
    assert loaded.stats.invoices == 12 + 1  # and the published example
    assert loaded.query("SELECT count(DISTINCT invoice_id), count(*) FROM billing.invoices") == [(13, 13)]
    assert "the listing changed while it was read; the cursor was not moved" in caplog.text


def test_state_is_sent_as_configured(tmp_path: Path) -> None:
    app = create_app(api_key=KEY, invoices=20)
    archived = {str(i["id"]) for i in app.invoices if i["archived_at"]}
    with serve(app) as server:
        loaded = load_source(
            kitchen(api_key=KEY, workspace="acme", base_url=f"{server.url}/api", state="active"), tmp_path, "kitchen"
        )
    active = {r[0] for r in loaded.query("SELECT invoice_id FROM billing.invoices")}
    assert archived and not archived & active and len(active) == 20 + 1 - len(archived)  # and the published example


def test_bad_key_is_an_authentication_error_naming_the_key(tmp_path: Path) -> None:
    app = create_app(api_key=KEY)
    with serve(app) as server, pytest.raises(AuthenticationError) as caught:
        load_source(
            kitchen(api_key="wrong-key-0001", workspace="acme", base_url=f"{server.url}/api"), tmp_path, "kitchen"
        )
    message = str(caught.value)
    assert caught.value.status == 401
    assert "kitchen [acme]" in message and "Unauthenticated." in message
    assert "SOURCES__KITCHEN__API_KEY" in message and "wrong-key-0001" not in message


def test_redirect_to_login_is_an_authentication_error_not_data(tmp_path: Path) -> None:
    app = create_app(api_key=KEY, workspace="acme", honour_json_headers=False)
    with serve(app) as server, pytest.raises(AuthenticationError) as caught:
        load_source(
            kitchen(api_key="wrong-key-0002", workspace="acme", base_url=f"{server.url}/api"), tmp_path, "kitchen"
        )
    assert caught.value.status == 302
    assert "login page (https://acme.kitchen.co/login)" in str(caught.value)
    assert "SOURCES__KITCHEN__API_KEY" in str(caught.value)


def test_laravel_validation_body_is_in_the_error(tmp_path: Path) -> None:
    app = create_app(api_key=KEY)
    with serve(app) as server, pytest.raises(HttpStatusError) as caught:
        load_source(
            kitchen(api_key=KEY, workspace="acme", base_url=f"{server.url}/api", state="everything"),
            tmp_path,
            "kitchen",
        )
    message = str(caught.value)
    assert caught.value.status == 422
    # The API's own words, read from Laravel's validation envelope: the message and the field.
    assert "The selected state is invalid.; state: The selected state is invalid." in message
    assert "check state (all, active, archived)" in message


def test_429_is_retried_after_retry_after(tmp_path: Path) -> None:
    app = create_app(api_key=KEY, invoices=12, requests_per_minute=2, rate_window=1)
    with serve(app) as server:
        loaded = load_source(
            kitchen(api_key=KEY, workspace="acme", base_url=f"{server.url}/api", per_page=4), tmp_path, "kitchen"
        )
    assert loaded.stats.invoices == 12 + 1  # and the published example
    assert app.log.count(status=429) >= 1 and loaded.stats.retries == app.log.count(status=429)


def test_empty_configuration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="workspace is empty"):
        load_source(kitchen(api_key=KEY, workspace=" "), tmp_path / "a", "kitchen")
    with pytest.raises(ConfigurationError, match="api_key is empty"):
        load_source(kitchen(api_key="", workspace="acme"), tmp_path / "b", "kitchen")


def test_default_base_url_is_the_workspace_subdomain(tmp_path: Path) -> None:
    seen: list[httpx.URL] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(401, json={"message": "Unauthenticated."})

    with pytest.raises(AuthenticationError):
        load_source(kitchen(api_key=KEY, workspace="acme", transport=httpx.MockTransport(refuse)), tmp_path, "kitchen")
    assert str(seen[0]).startswith("https://acme.kitchen.co/api/clients?")
