"""The Fohlio sandbox behaves as the API is documented, seen through plain HTTP."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
import pytest
import simplejson

from sandbox import framework
from sandbox.fohlio import DEFAULT_TOKEN, create_app
from tests.support import serve

RAW = {"authorization": DEFAULT_TOKEN}
BEARER = {"authorization": f"Bearer {DEFAULT_TOKEN}"}


def get(url: str, path: str, headers: dict[str, str] = RAW, **params: Any) -> httpx.Response:
    return httpx.get(url + path, headers=headers, params=params)


def body(response: httpx.Response) -> Any:
    return simplejson.loads(response.content, use_decimal=True)


def test_missing_or_wrong_token_is_401() -> None:
    with serve(create_app()) as server:
        assert get(server.url, "/client_invoices", headers={}).status_code == 401
        wrong = get(server.url, "/client_invoices", headers={"authorization": "nope"})
        assert wrong.status_code == 401
        assert body(wrong) == {"error": "Unauthorized"}
        assert get(server.url, "/contacts", headers={"authorization": f"Token {DEFAULT_TOKEN}"}).status_code == 401


@pytest.mark.parametrize(
    ("mode", "raw_ok", "bearer_ok"), [("either", True, True), ("raw", True, False), ("bearer", False, True)]
)
def test_auth_modes_accept_the_forms_they_say(mode: str, raw_ok: bool, bearer_ok: bool) -> None:
    with serve(create_app(auth_mode=mode)) as server:
        assert (get(server.url, "/client_invoices", headers=RAW).status_code == 200) is raw_ok
        assert (get(server.url, "/client_invoices", headers=BEARER).status_code == 200) is bearer_ok


def test_pages_are_bare_arrays_25_by_default_and_end_short() -> None:
    app = create_app(invoices=60, fixtures=False)  # exact page counts
    with serve(app) as server:
        first = body(get(server.url, "/client_invoices"))
        assert isinstance(first, list) and len(first) == 25
        pages = [body(get(server.url, "/client_invoices", page=n, per_page=25)) for n in (1, 2, 3, 4)]
        assert [len(p) for p in pages] == [25, 25, 10, 0]
        ids = [i["id"] for p in pages for i in p]
        assert len(ids) == len(set(ids)) == 60


def test_per_page_is_limited_to_100() -> None:
    with serve(create_app(invoices=120, fixtures=False)) as server:
        assert len(body(get(server.url, "/client_invoices", per_page=100))) == 100
        too_many = get(server.url, "/client_invoices", per_page=101)
        assert too_many.status_code == 400
        assert "per_page" in body(too_many)["error"]
        assert get(server.url, "/contacts", per_page=0).status_code == 400


def test_contacts_filter_on_category_types() -> None:
    app = create_app(clients=6, other_contacts=4, fixtures=False)
    with serve(app) as server:
        everyone = body(get(server.url, "/contacts", per_page=100))
        assert len(everyone) == 10
        clients = body(httpx.get(server.url + "/contacts", headers=RAW, params={"category_types[]": ["client"]}))
        assert len(clients) == 6
        assert {c["category"]["type"] for c in clients} == {"client"}
        two = body(
            httpx.get(server.url + "/contacts", headers=RAW, params={"category_types[]": ["client", "collaborator"]})
        )
        assert {c["category"]["type"] for c in two} == {"client", "collaborator"}


def test_updated_since_is_honoured_on_invoices_and_contacts() -> None:
    app = create_app()
    mark = app.now()
    app.update_invoice(30005, note="changed")
    app.update_client(502, name="Renamed Ltd")
    since = int(mark.timestamp())
    with serve(app) as server:
        invoices = body(get(server.url, "/client_invoices", updated_since=since))
        assert [i["id"] for i in invoices] == [30005]
        contacts = body(get(server.url, "/contacts", updated_since=since))
        assert [c["name"] for c in contacts] == ["Renamed Ltd"]
        assert get(server.url, "/client_invoices", updated_since="yesterday").status_code == 400


def test_updated_since_can_be_ignored() -> None:
    app = create_app(honour_updated_since=False, fixtures=False)
    with serve(app) as server:
        assert len(body(get(server.url, "/client_invoices", per_page=100, updated_since=2_000_000_000))) == 60


def test_project_id_filters_invoices() -> None:
    app = create_app()
    with serve(app) as server:
        listed = body(get(server.url, "/client_invoices", per_page=100, project_id=9002))
        assert listed and {i["project_id"] for i in listed} == {9002}
        assert len(listed) == sum(1 for i in app.team.invoices.values() if i.project_id == 9002)


def test_list_and_single_invoice_show_the_documented_client_drift() -> None:
    with serve(create_app()) as server:
        listed = body(get(server.url, "/client_invoices", per_page=1))[0]
        single = body(get(server.url, f"/client_invoices/{listed['id']}"))
        assert "categories" in listed["client"] and "category" not in listed["client"]
        assert all("priority" in a for a in listed["client"]["addresses"])
        assert "category" in single["client"] and "categories" not in single["client"]
        assert all("priority" not in a for a in single["client"]["addresses"])
        assert {k: v for k, v in listed.items() if k != "client"} == {k: v for k, v in single.items() if k != "client"}
        assert get(server.url, "/client_invoices/999999").status_code == 404


def test_invoice_money_is_exact_and_term_amounts_are_strings() -> None:
    app = create_app(fixtures=False)  # the published skeleton has numbers for money
    with serve(app) as server:
        response = get(server.url, "/client_invoices", per_page=100)
        invoices = body(response)
    assert all(isinstance(i["amount_with_tax"], Decimal) for i in invoices)
    assert all(i["amount"] + i["tax_amount"] == i["amount_with_tax"] for i in invoices)
    terms = [t for i in invoices for t in i["payment_terms"]]
    assert terms and all(isinstance(t["amount"], str) for t in terms)
    for i in invoices:
        if i["payment_terms"]:
            assert sum(Decimal(t["amount"]) for t in i["payment_terms"]) == i["amount_with_tax"]


def test_seeded_data_spans_projects_clients_and_every_status() -> None:
    app = create_app()
    with serve(app) as server:
        invoices = body(get(server.url, "/client_invoices", per_page=100))
        team = body(get(server.url, "/team"))
    statuses = Counter(i["status"] for i in invoices)
    assert {"revised", "void", "paid_partially", "deposited", "draft", "sent", "paid", "overdue"} <= set(statuses)
    assert len({i["project_id"] for i in invoices}) >= 5
    assert len({i["client"]["id"] for i in invoices}) >= 5
    partial = [i for i in invoices if i["status"] == "paid_partially"]
    assert all(0 < i["balance"] < i["amount_with_tax"] for i in partial)
    enabled = [p for p in team["projects"] if p["project_currency"]["enabled"]]
    assert enabled and all(len(p["project_currency"]["currency"]["iso_code"]) == 3 for p in enabled)
    assert any(not p["project_currency"]["enabled"] for p in team["projects"])
    assert any("T" in (i["invoice_date"] or "") for i in invoices)


def test_rate_budget_answers_429_with_retry_after() -> None:
    with serve(create_app(requests_per_minute=3)) as server:
        statuses = [get(server.url, "/contacts").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = get(server.url, "/contacts")
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1


def test_mutations_move_updated_at_and_figures() -> None:
    app = create_app()
    before = app.render_invoice(app.team.invoices[30003], single=True)
    app.remove_line(30003, 0)
    after = app.render_invoice(app.team.invoices[30003], single=True)
    assert len(after["items"]) == len(before["items"]) - 1
    assert after["amount"] < before["amount"]
    assert after["updated_at"] > before["updated_at"]
    assert dt.datetime.fromisoformat(after["updated_at"].replace("Z", "+00:00")) == app.max_updated_at()


def test_summary_counts_what_the_sandbox_holds() -> None:
    app = create_app(clients=4, other_contacts=3, invoices=20, fixtures=False)
    summary = app.summary()
    assert summary["clients"] == 4
    assert summary["invoices"] == 20
    assert summary["lines"] == sum(len(i.items) for i in app.team.invoices.values())
    assert sum(summary["totals"].values()) == sum(app.figures(i)["amount_with_tax"] for i in app.team.invoices.values())


def test_unknown_paths_are_404() -> None:
    with serve(create_app()) as server:
        assert get(server.url, "/invoices").status_code == 404


def test_the_published_skeleton_is_served_with_its_client_unless_fixtures_are_off() -> None:
    app, bare = create_app(), create_app(fixtures=False)
    with serve(app) as server:
        single = body(get(server.url, "/client_invoices/123"))
        listed = body(get(server.url, "/client_invoices", per_page=100))
        contacts = body(get(server.url, "/contacts?category_types[]=client&per_page=100"))
    assert single["amount_with_tax"] == 123 and single["invoice_date"] == "2023-11-07"
    assert single["client"]["category"] == {"id": 123, "type": "client"}
    assert listed[0]["id"] == 123 and listed[0]["client"]["categories"] == [{"id": 123, "type": "client"}]
    assert 123 in {c["id"] for c in contacts}
    summary, without = app.summary(), bare.summary()
    assert (summary["clients"], summary["invoices"]) == (without["clients"] + 1, without["invoices"] + 1)
    assert summary["totals"]["USD"] == without["totals"]["USD"] + 123  # priced in the team's currency


def test_today_moves_every_generated_date_by_the_same_whole_days(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = dt.datetime(2025, 6, 15, 12, 34, 56, tzinfo=dt.UTC)
    monkeypatch.setattr(framework, "utc_now", lambda: clock)
    today = dt.date(2031, 5, 20)
    before, after = create_app(), create_app(today=today)
    shift = dt.timedelta(days=(today - clock.date()).days)
    for old, new in zip(before.team.invoices.values(), after.team.invoices.values(), strict=True):
        assert (new.created_at - old.created_at, new.updated_at - old.updated_at) == (shift, shift)
        if old.invoice_date and new.invoice_date:
            assert dt.date.fromisoformat(new.invoice_date[:10]) - dt.date.fromisoformat(old.invoice_date[:10]) == shift
        assert (old.invoice_date is None) == (new.invoice_date is None)
        assert (new.id, new.items, new.status) == (old.id, old.items, old.status)
    assert after.max_updated_at().date() == today - dt.timedelta(days=1)
    assert after.published == before.published  # the published example keeps its dates


def test_a_listing_follows_mutations_without_holding_the_invoices_it_serves() -> None:
    app = create_app(invoices=3000, projects=40, clients=20, fixtures=False)
    with serve(app) as server:
        assert len(body(get(server.url, "/client_invoices", per_page=100, page=12))) == 100
        mark = int(app.max_updated_at().timestamp())
        assert body(get(server.url, "/client_invoices", updated_since=mark + 1)) == []
        assert app.team.invoices.generated.held == {}  # pages are made on demand, not kept
        app.update_invoice(30500, note="changed")
        assert [i["id"] for i in body(get(server.url, "/client_invoices", updated_since=mark + 1))] == [30500]
        app.delete_invoice(30001)
        listed = body(get(server.url, "/client_invoices", per_page=2, project_id=9001))
        assert [i["id"] for i in listed] == [30041, 30081]
        added = app.add_invoice(None)
        assert body(get(server.url, "/client_invoices", per_page=100, page=30))[-1]["id"] == added == 33001
