"""The sandbox answers as the InvoiceXpress docs say (docs/providers.md §1, seeds 000/001)."""

import httpx
import pytest

from sandbox.invoicexpress import create_app
from tests.support import serve


@pytest.fixture
def app():
    return create_app(clients=5, invoices_per_client=25)


def test_api_key_missing_or_wrong_is_401_with_the_documented_body(app):
    with serve(app) as server:
        for params in ({}, {"api_key": "wrong"}):
            response = httpx.get(f"{server.url}/clients.json", params=params)
            assert response.status_code == 401
            assert response.json() == {"errors": {"error": "Invalid API key"}}


def test_unknown_client_is_404_with_the_documented_body(app):
    with serve(app) as server:
        response = httpx.post(f"{server.url}/clients/999/invoices.json", params={"api_key": app.api_key}, json={})
        assert response.status_code == 404
        assert response.json() == {"errors": [{"error": "Client not found"}]}


def test_per_page_defaults_to_the_account_setting_and_pagination_is_reported(app):
    with serve(app) as server:
        url = f"{server.url}/clients/1310176/invoices.json"
        body = {"filter": {"archived": ["archived", "non_archived"]}}
        first = httpx.post(url, params={"api_key": app.api_key}, json=body).json()
        assert first["pagination"] == {"total_entries": 25, "current_page": 1, "total_pages": 3, "per_page": 10}
        assert len(first["invoices"]) == 10
        last = httpx.post(url, params={"api_key": app.api_key, "page": 3, "per_page": 10}, json=body).json()
        assert len(last["invoices"]) == 5
        capped = httpx.post(url, params={"api_key": app.api_key, "per_page": 500}, json=body).json()
        assert capped["pagination"]["per_page"] == app.max_per_page


def test_the_filter_body_restricts_status_type_and_archived(app):
    with serve(app) as server:
        url = f"{server.url}/clients/1310177/invoices.json"
        params = {"api_key": app.api_key, "per_page": 50}
        everything = httpx.post(url, params=params, json={"filter": {"archived": ["archived", "non_archived"]}})
        default = httpx.post(url, params=params, json={}).json()["invoices"]
        everything = everything.json()["invoices"]
        assert len(everything) == 25
        assert all(not bool(int(i["archived"])) for i in default) and len(default) < 25
        sent = httpx.post(
            url, params=params, json={"filter": {"status": ["sent"], "archived": ["archived", "non_archived"]}}
        )
        assert {i["status"] for i in sent.json()["invoices"]} <= {"final"}
        typed = httpx.post(url, params=params, json={"filter": {"by_type": ["CreditNote"], "archived": ["archived"]}})
        assert all(i["type"] == "CreditNote" and bool(int(i["archived"])) for i in typed.json()["invoices"])


def test_the_data_carries_the_documented_quirks():
    app = create_app(clients=30, invoices_per_client=20)
    invoices = app.all_invoices()
    assert {"Euro", "US Dollar", "Pound Sterling"} <= {i["currency"] for i in invoices}
    assert any(isinstance(i["total"], str) for i in invoices)  # amounts as strings
    assert any(i["archived"] in (0, 1) and not isinstance(i["archived"], bool) for i in invoices)
    assert {"draft", "rascunho"} <= {i["sequence_number"] for i in invoices if i["status"] == "draft"}
    assert any(i["retention"] not in ("", "0.0") for i in invoices)
    assert {"Invoice", "CreditNote", "InvoiceReceipt"} <= {i["type"] for i in invoices}
    assert all(isinstance(item["quantity"], str) for i in invoices for item in i["items"])


def test_requests_beyond_the_budget_get_429():
    app = create_app(clients=2, requests_per_minute=3, retry_after=1)
    with serve(app) as server:
        codes = [httpx.get(f"{server.url}/clients.json", params={"api_key": app.api_key}).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        response = httpx.get(f"{server.url}/clients.json", params={"api_key": app.api_key})
        assert response.headers["Retry-After"] == "1"
