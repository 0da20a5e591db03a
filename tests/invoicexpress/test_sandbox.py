"""The sandbox answers as the InvoiceXpress docs say (docs/providers.md §1, seeds 000/001)."""

import datetime as dt
import json
from decimal import Decimal

import httpx
import pytest

from sandbox import framework
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
    app = create_app(clients=30, invoices_per_client=20, fixtures=False)
    invoices = app.all_invoices()
    assert {"Euro", "U.S. dollar", "Pound sterling", "Polish złoty"} <= {i["currency"] for i in invoices}
    assert any(isinstance(i["total"], str) for i in invoices)  # amounts as strings
    assert any(i["archived"] in (0, 1) and not isinstance(i["archived"], bool) for i in invoices)
    assert {"draft", "rascunho", ""} <= {i["sequence_number"] for i in invoices if i["status"] == "draft"}
    assert any(i["retention"] not in ("", "0.0") for i in invoices)
    assert {"Invoice", "CreditNote", "InvoiceReceipt"} <= {i["type"] for i in invoices}
    assert all(isinstance(item["quantity"], str) for i in invoices for item in i["items"])


def places(value: object) -> int:
    exponent = Decimal(str(value)).as_tuple().exponent
    return -exponent if isinstance(exponent, int) else 0


def test_the_data_is_as_untidy_as_the_sources_and_inferences_of_the_docs_say():
    """docs/providers.md §1.6/§1.8: nulls and six-decimal line figures (inferences), four-decimal unit prices."""
    invoices = create_app(clients=30, invoices_per_client=20, fixtures=False).all_invoices()
    for key in ("reference", "observations", "retention"):
        assert any(i[key] is None for i in invoices), key
    items = [item for i in invoices for item in i["items"]]
    assert any(item["unit"] is None for item in items)
    assert any(places(item["unit_price"]) == 4 for item in items)
    assert any(places(item["tax_amount"]) == 6 for item in items)
    # documents stay in cents and add up whatever their lines carry
    for i in invoices:
        assert Decimal(str(i["total"])) == Decimal(str(i["total"])).quantize(Decimal("0.01"))


def test_an_empty_listing_has_zero_total_pages():
    app = create_app(clients=1, invoices_per_client=0, fixtures=False)
    with serve(app) as server:
        url = f"{server.url}/clients/1310176/invoices.json"
        body = httpx.post(url, params={"api_key": app.api_key}, json={}).json()
    assert body == {
        "invoices": [],
        "pagination": {"total_entries": 0, "current_page": 1, "total_pages": 0, "per_page": 10},
    }


def test_the_published_samples_are_served_as_one_more_clients_documents():
    app, bare = (
        create_app(clients=2, invoices_per_client=3),
        create_app(clients=2, invoices_per_client=3, fixtures=False),
    )
    with serve(app) as server:
        params = {"api_key": app.api_key}
        clients = httpx.get(f"{server.url}/clients.json", params=params).json()
        assert clients["pagination"]["total_entries"] == 3
        assert clients["clients"][-1] == {
            "id": 628535,
            "name": "John Doe",
            "code": "C1",
            "country": "Portugal",
            "email": "john@example.com",
        }
        every = {"filter": {"archived": ["archived", "non_archived"]}}
        response = httpx.post(f"{server.url}/clients/628535/invoices.json", params=params, json=every)
        listed = json.loads(response.text, parse_float=Decimal)
    assert [i["id"] for i in listed["invoices"]] == [541793, 2137287]
    assert listed["invoices"][0]["retention"] == "foo" and listed["invoices"][1]["total"] == 30
    # Listed, the single-document example's lines carry `unit_price`/`quantity` as the list schema writes
    # them (strings, docs/providers.md §1.4); everything else is as published.
    published = framework.published_sample("invoicexpress", "get_invoice.json")["invoice"]
    served = listed["invoices"][1]
    assert [(i["unit_price"], i["quantity"]) for i in served["items"]] == [("100.0", "1.0")]
    assert (published["items"][0]["unit_price"], published["items"][0]["quantity"]) == (100, 1)
    strip = [{k: v for k, v in i.items() if k not in ("unit_price", "quantity")} for i in published["items"]]
    assert [{k: v for k, v in i.items() if k not in ("unit_price", "quantity")} for i in served["items"]] == strip
    assert {k: v for k, v in served.items() if k != "items"} == {k: v for k, v in published.items() if k != "items"}
    every_line = [item for i in listed["invoices"] for item in i["items"]]
    assert all(isinstance(item["unit_price"], str) and isinstance(item["quantity"], str) for item in every_line)
    summary, without = app.summary(), bare.summary()
    assert (summary["clients"], summary["invoices"], summary["lines"]) == (
        3,
        without["invoices"] + 2,
        without["lines"] + 2,
    )
    assert summary["totals"]["EUR"] == without["totals"].get("EUR", 0) + Decimal("1.07") + 30


def test_requests_beyond_the_budget_get_429():
    app = create_app(clients=2, requests_per_minute=3, retry_after=1)
    with serve(app) as server:
        codes = [httpx.get(f"{server.url}/clients.json", params={"api_key": app.api_key}).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        response = httpx.get(f"{server.url}/clients.json", params={"api_key": app.api_key})
        assert response.headers["Retry-After"] == "1"


def test_today_moves_every_document_date_by_the_same_whole_days():
    today = dt.date(2031, 5, 20)
    old = create_app(clients=4, invoices_per_client=30).all_invoices()
    new = create_app(clients=4, invoices_per_client=30, today=today).all_invoices()

    def day(text):
        return dt.datetime.strptime(text, "%d/%m/%Y").date()

    pairs = zip(old, new, strict=True)
    shifts = {(day(n["date"]) - day(o["date"]), day(n["due_date"]) - day(o["due_date"])) for o, n in pairs}
    [(shift, same)] = shifts - {(dt.timedelta(0), dt.timedelta(0))}  # the published samples keep their dates
    assert shift == same and shift.days > 0
    assert max(day(i["date"]) for i in new[: 4 * 30]) <= today  # the generated ones, dated up to today
    assert [{**o, "date": "", "due_date": ""} for o in old] == [{**n, "date": "", "due_date": ""} for n in new]
