"""The Kitchen sandbox behaves as the docs describe the API (plain httpx, no source code)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.framework import NOW
from sandbox.kitchen import create_app
from tests.support import serve

KEY = "kt_test_7a1f0c5e9b2d"
HEADERS = {
    "Authorization": f"Bearer {KEY}",
    "Accept": "application/json",
    "X-Requested-With": "XMLHttpRequest",
}
ID = {
    "in": re.compile(r"^in_[0-9a-f]{24}$"),
    "invi": re.compile(r"^invi_[0-9a-f]{24}$"),
    "invti": re.compile(r"^invti_[0-9a-f]{24}$"),
    "u": re.compile(r"^u_[0-9a-f]{24}$"),
    "bp": re.compile(r"^bp_[0-9a-f]{24}$"),
}


def get(url: str, headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
    return httpx.get(url, headers=HEADERS if headers is None else headers, params=params, follow_redirects=False)


def test_wrong_token_with_json_headers_is_a_json_401() -> None:
    app = create_app(api_key=KEY)
    with serve(app) as server:
        response = get(f"{server.url}/api/invoices", {**HEADERS, "Authorization": "Bearer nope"})
        assert response.status_code == 401
        assert response.json() == {"message": "Unauthenticated."}
        missing = {k: v for k, v in HEADERS.items() if k != "Authorization"}
        assert get(f"{server.url}/api/clients", missing).status_code == 401
        # Laravel's expectsJson: an AJAX call with no specific Accept also gets JSON.
        ajax_only = {"X-Requested-With": "XMLHttpRequest", "Accept": "*/*"}
        assert get(f"{server.url}/api/invoices", ajax_only).json() == {"message": "Unauthenticated."}


@pytest.mark.parametrize("accept", ["text/html", "*/*"])
def test_without_the_json_headers_laravel_redirects_to_login(accept: str) -> None:
    app = create_app(api_key=KEY, workspace="studio")
    with serve(app) as server:
        response = get(f"{server.url}/api/invoices", {"Authorization": "Bearer nope", "Accept": accept})
        assert response.status_code == 302
        assert response.headers["Location"] == "https://studio.kitchen.co/login"
        assert response.content == b""


def test_a_valid_token_is_answered_without_the_json_headers_too() -> None:
    app = create_app(api_key=KEY)
    with serve(app) as server:
        response = get(f"{server.url}/api/clients", {"Authorization": f"Bearer {KEY}"})
        assert response.status_code == 200 and response.json()["data"]


def test_proxy_stripping_the_headers_redirects_even_json_calls() -> None:
    app = create_app(api_key=KEY, honour_json_headers=False)
    with serve(app) as server:
        assert get(f"{server.url}/api/invoices", {**HEADERS, "Authorization": "Bearer x"}).status_code == 302
        assert get(f"{server.url}/api/invoices").status_code == 200


def test_state_defaults_to_active_and_all_includes_archived() -> None:
    app = create_app(api_key=KEY, invoices=30)
    archived = {i["id"] for i in app.invoices if i["archived_at"] is not None}
    assert archived, "the seeded data must hold archived invoices"
    with serve(app) as server:
        default = get(f"{server.url}/api/invoices", per_page=100).json()
        every = get(f"{server.url}/api/invoices", per_page=100, state="all").json()
        only = get(f"{server.url}/api/invoices", per_page=100, state="archived").json()
    assert default["meta"]["total"] == len(app.invoices) - len(archived)  # 30 and the published one
    assert not archived & {i["id"] for i in default["data"]}
    assert every["meta"]["total"] == len(app.invoices) == 31
    assert {i["id"] for i in only["data"]} == archived


def test_invalid_state_is_a_laravel_validation_error() -> None:
    app = create_app(api_key=KEY)
    with serve(app) as server:
        response = get(f"{server.url}/api/invoices", state="deleted")
    assert response.status_code == 422
    assert response.json() == {
        "message": "The selected state is invalid.",
        "errors": {"state": ["The selected state is invalid."]},
    }


def test_invoice_pages_links_and_meta_as_documented() -> None:
    app = create_app(api_key=KEY, invoices=25, fixtures=False)  # exact page counts
    with serve(app) as server:
        first = get(f"{server.url}/api/invoices", state="all").json()
        second = get(f"{server.url}/api/invoices", state="all", page=2).json()
        third = get(f"{server.url}/api/invoices", state="all", page=3).json()
    assert first["meta"] == {
        "current_page": 1,
        "from": 1,
        "last_page": 2,
        "links": [
            {"url": None, "label": "« Previous", "active": False},
            {"url": "/api/invoices?page=1", "label": "1", "active": True},
            {"url": "/api/invoices?page=2", "label": "2", "active": False},
            {"url": "/api/invoices?page=2", "label": "Next »", "active": False},
        ],
        "path": "/api/invoices",
        "per_page": 20,
        "to": 20,
        "total": 25,
    }
    assert first["links"] == {
        "first": "/api/invoices/?page=1",
        "last": "/api/invoices/?page=2",
        "prev": None,
        "next": "/api/invoices/?page=2",
    }
    assert second["links"]["next"] is None and second["links"]["prev"] == "/api/invoices/?page=1"
    assert (second["meta"]["from"], second["meta"]["to"], len(second["data"])) == (21, 25, 5)
    assert third["data"] == [] and third["meta"]["from"] is None
    created = [i["created_at"] for i in first["data"] + second["data"]]
    assert created == sorted(created, reverse=True), "newest-created first"
    assert {i["id"] for i in first["data"] + second["data"]} == {i["id"] for i in app.invoices}


def test_long_listings_get_laravels_elided_link_window() -> None:
    app = create_app(api_key=KEY, invoices=40, fixtures=False)  # exactly 20 pages
    with serve(app) as server:
        meta = get(f"{server.url}/api/invoices", state="all", per_page=2, page=10).json()["meta"]
    labels = [link["label"] for link in meta["links"]]
    assert labels == [
        "« Previous",
        "1",
        "2",
        "...",
        "7",
        "8",
        "9",
        "10",
        "11",
        "12",
        "13",
        "...",
        "19",
        "20",
        "Next »",
    ]


def test_clients_links_are_absolute() -> None:
    app = create_app(api_key=KEY, clients=5, workspace="studio")
    with serve(app) as server:
        body = get(f"{server.url}/api/clients", per_page=2, page=2).json()
    assert body["links"] == {
        "first": "https://studio.kitchen.co/api/clients?page=1",
        "last": "https://studio.kitchen.co/api/clients?page=3",
        "prev": "https://studio.kitchen.co/api/clients?page=1",
        "next": "https://studio.kitchen.co/api/clients?page=3",
    }
    assert body["meta"]["path"] == "https://studio.kitchen.co/api/clients"
    assert all(c["group"] == "client" and ID["u"].match(c["id"]) for c in body["data"])


def test_per_page_is_capped_and_validated() -> None:
    app = create_app(api_key=KEY, invoices=120)
    with serve(app) as server:
        big = get(f"{server.url}/api/invoices", state="all", per_page=500).json()
        bad = get(f"{server.url}/api/invoices", per_page="many")
    assert big["meta"]["per_page"] == 100 and len(big["data"]) == 100 and big["meta"]["last_page"] == 2
    assert bad.status_code == 422 and "per_page" in bad.json()["errors"]


def test_throttle_answers_429_with_laravel_headers() -> None:
    app = create_app(api_key=KEY, requests_per_minute=2)
    with serve(app) as server:
        ok = [get(f"{server.url}/api/clients") for _ in range(2)]
        limited = get(f"{server.url}/api/clients")
    assert [r.headers["X-RateLimit-Remaining"] for r in ok] == ["1", "0"]
    assert all(r.headers["X-RateLimit-Limit"] == "2" for r in ok)
    assert limited.status_code == 429
    assert limited.json() == {"message": "Too Many Attempts."}
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["X-RateLimit-Limit"] == "2" and limited.headers["X-RateLimit-Remaining"] == "0"


def test_unlimited_by_default() -> None:
    app = create_app(api_key=KEY)
    with serve(app) as server:
        assert all(get(f"{server.url}/api/clients").status_code == 200 for _ in range(30))


def test_show_routes_and_404() -> None:
    app = create_app(api_key=KEY)
    invoice_id = app.invoices[3]["id"]
    with serve(app) as server:
        assert get(f"{server.url}/api/invoices/{invoice_id}").json()["data"]["id"] == invoice_id
        missing = get(f"{server.url}/api/invoices/in_000000000000000000000000")
        unknown = get(f"{server.url}/api/webhooks")
    assert missing.status_code == 404 and "message" in missing.json()
    assert unknown.status_code == 404


def test_money_is_written_as_exact_json_numbers() -> None:
    app = create_app(api_key=KEY)
    with serve(app) as server:
        text = get(f"{server.url}/api/invoices", state="all").text
    assert re.search(r'"total_amount":\d+\.\d{2}[,}]', text)
    assert re.search(r'"quantity":"\d+\.\d{2}"', text)
    assert "_rate" not in text


def test_seeded_data_has_the_variety_the_pipeline_must_handle() -> None:
    app = create_app(api_key=KEY, fixtures=False)  # the published example lists rates in tax_items
    invoices = app.invoices
    statuses = Counter(i["status"] for i in invoices)
    assert set(statuses) == {"draft", "open", "paid", "void", "uncollectible"}
    assert {i["currency"] for i in invoices} == {"USD", "EUR", "GBP"}
    assert any(i["archived_at"] for i in invoices)
    assert any(i["client"] is None for i in invoices)
    assert any(i["discounts"] for i in invoices)
    assert any(len(i["tax_items"]) >= 2 for i in invoices)
    assert any(i["shipping_amount"] > 0 for i in invoices)
    assert any(i["items"] == [] for i in invoices)
    assert any(Decimal(item["quantity"]) != 1 for i in invoices for item in i["items"])
    for invoice in invoices:
        assert ID["in"].match(invoice["id"]) and ID["bp"].match(invoice["billing_profile"])
        assert all(ID["invi"].match(item["id"]) for item in invoice["items"])
        assert all(ID["invti"].match(t["id"]) for t in invoice["tax_items"] + invoice["discounts"])
        lines = sum((Decimal(item["quantity"]) * item["amount"] for item in invoice["items"]), Decimal(0))
        expected = lines.quantize(Decimal("0.01"), ROUND_HALF_UP) - invoice["discount_amount"] + invoice["tax_amount"]
        assert invoice["total_amount"] == expected + invoice["shipping_amount"]
        assert invoice["tax_amount"] == sum((t["amount"] for t in invoice["tax_items"]), Decimal(0))
        assert (invoice["status"] == "paid") == (invoice["paid_at"] is not None)
        assert (invoice["status"] == "void") == (invoice["voided_at"] is not None)


def test_same_seed_same_data_and_summary_counts() -> None:
    one, two = create_app(seed=7), create_app(seed=7)
    assert one.invoices == two.invoices and one.clients == two.clients
    summary = one.summary()
    assert summary["invoices"] == len(one.invoices) and summary["clients"] == len(one.clients)
    assert summary["lines"] == sum(len(i["items"]) for i in one.invoices)
    assert sum(summary["totals"].values()) == sum(i["total_amount"] for i in one.invoices)
    assert create_app(seed=8).invoices != one.invoices


def test_mutations_bump_updated_at_like_the_api() -> None:
    app = create_app(api_key=KEY)
    oldest = app.oldest_invoice_id()
    before = app.invoice(oldest)
    app.update_invoice(oldest, memo="Updated")
    after = app.invoice(oldest)
    assert after["memo"] == "Updated" and after["updated_at"] > before["updated_at"]
    target = next(i["id"] for i in app.invoices if len(i["items"]) >= 2)
    total_before = app.invoice(target)["total_amount"]
    removed = app.remove_line(target)
    assert removed["id"] not in {item["id"] for item in app.invoice(target)["items"]}
    assert app.invoice(target)["total_amount"] < total_before
    app.update_invoice(target, archived_at=NOW)
    assert app.invoice(target)["archived_at"] == app.invoice(target)["updated_at"]


def test_the_published_example_is_served_unchanged_unless_fixtures_are_off() -> None:
    published = json.loads((Path(__file__).parents[2] / "sandbox/kitchen/samples/list_invoices.json").read_text())
    [sample] = published["data"]
    app, bare = create_app(api_key=KEY), create_app(api_key=KEY, fixtures=False)
    with serve(app) as server:
        shown = get(f"{server.url}/api/invoices/{sample['id']}").json()["data"]
        listed = get(f"{server.url}/api/invoices", state="all", per_page=100).json()["data"]
    assert shown == sample and listed[0] == sample  # created 2024-03-13: the newest, first
    assert len(bare.invoices) == len(app.invoices) - 1 and sample["id"] not in {i["id"] for i in bare.invoices}
    summary, without = app.summary(), bare.summary()
    assert summary["invoices"] == without["invoices"] + 1 and summary["lines"] == without["lines"] + 1
    assert summary["totals"]["USD"] == without["totals"]["USD"] + Decimal("508.9")


def _moments(row: dict[str, Any]) -> dict[str, dt.datetime]:
    return {k: dt.datetime.fromisoformat(v) for k, v in row.items() if k.endswith(("_at", "_date")) and v}


def _undated(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in _moments(row)}


def test_today_moves_every_generated_date_by_the_same_whole_days() -> None:
    today = dt.date(2031, 5, 20)
    before, after = create_app(), create_app(today=today)
    shifts = set()
    for old, new in zip([*before.clients, *before.invoices], [*after.clients, *after.invoices], strict=True):
        assert _undated(old) == _undated(new)
        shifts |= {new_at - _moments(old)[k] for k, new_at in _moments(new).items()}
    published = {dt.timedelta(0)}  # the published example keeps its own dates
    [shift] = shifts - published
    assert shift.seconds == 0 and after._now.date() == today  # the sandbox's clock: a day after the latest date
    latest = max(at for row in [*after.clients, *after.invoices] for at in _moments(row).values())
    assert latest.date() == today - dt.timedelta(days=1)


def test_a_listing_follows_mutations_and_records_changed_in_place_without_holding_the_others() -> None:
    app = create_app(api_key=KEY, invoices=3000, fixtures=False)
    with serve(app) as server:
        first = get(f"{server.url}/api/invoices", per_page=5).json()["data"]
        assert len(get(f"{server.url}/api/invoices", per_page=100, page=17, state="all").json()["data"]) == 100
        assert app.invoices.generated.held == {}  # pages are made on demand, not kept
        app.update_invoice(first[0]["id"], archived_at=NOW)
        again = get(f"{server.url}/api/invoices", per_page=5).json()["data"]
        assert again[0]["id"] == first[1]["id"]
        added = app.add_invoice(app.clients[0]["id"])
        assert get(f"{server.url}/api/invoices", per_page=1).json()["data"][0]["id"] == added
        record = app.invoices[10]  # handed out: changed in place as the API's own row
        record["created_at"] = "2099-01-01T00:00:00+00:00"
        newest = get(f"{server.url}/api/invoices", per_page=1, state="all").json()
        assert newest["data"][0]["id"] == record["id"] and newest["meta"]["total"] == 3001
        app.delete_invoice(record["id"])
        assert get(f"{server.url}/api/invoices/{record['id']}").status_code == 404
    assert app.oldest_invoice_id() == app.invoices[0]["id"]
