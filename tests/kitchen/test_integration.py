"""Kitchen end to end: the real CLI against the sandbox over HTTP, then SQL on the DuckDB file."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sandbox.framework import NOW
from sandbox.kitchen import KitchenApp, create_app
from tests.support import Result, Workspace, serve

pytestmark = pytest.mark.integration

DATASET = "billing"
PER_PAGE = "10"


def run(workspace: Workspace, app: KitchenApp, url: str, **extra: str) -> Result:
    env = {**app.pipeline_env(url), "SOURCES__KITCHEN__PER_PAGE": PER_PAGE, **extra}
    return workspace.run(env)


def q(workspace: Workspace, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return workspace.query(sql.replace("{ds}", DATASET), *params)


def snapshot(workspace: Workspace) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "invoices": q(workspace, "SELECT * FROM {ds}.invoices ORDER BY invoice_id"),
        "items": q(workspace, "SELECT * FROM {ds}.invoice_items ORDER BY invoice_id, line_number"),
        "clients": q(workspace, "SELECT * FROM {ds}.clients ORDER BY client_id"),
    }


def assert_matches_sandbox(workspace: Workspace, app: KitchenApp) -> None:
    summary = app.summary()
    assert q(workspace, "SELECT count(*) FROM {ds}.invoices")[0][0] == summary["invoices"]
    assert q(workspace, "SELECT count(*) FROM {ds}.invoice_items")[0][0] == summary["lines"]
    assert q(workspace, "SELECT count(*) FROM {ds}.clients")[0][0] == summary["clients"]
    totals = dict(q(workspace, "SELECT currency, sum(total) FROM {ds}.invoices GROUP BY currency"))
    assert totals == summary["totals"]


def assert_invariants(workspace: Workspace) -> None:
    assert (
        q(workspace, "SELECT count(*) - count(DISTINCT (provider, account, invoice_id)) FROM {ds}.invoices")[0][0] == 0
    )
    assert (
        q(
            workspace,
            """SELECT count(*) - count(DISTINCT (provider, account, invoice_id, line_number))
                           FROM {ds}.invoice_items""",
        )[0][0]
        == 0
    )
    assert q(workspace, "SELECT count(*) - count(DISTINCT (provider, account, client_id)) FROM {ds}.clients")[0][0] == 0
    assert (
        q(workspace, "SELECT count(*) FROM {ds}.invoices WHERE NOT regexp_full_match(currency, '[A-Z]{3}')")[0][0] == 0
    )
    assert (
        q(
            workspace,
            """SELECT count(*) FROM {ds}.invoices WHERE status NOT IN
                           ('draft', 'open', 'partially_paid', 'paid', 'void', 'uncollectible')""",
        )[0][0]
        == 0
    )
    assert (
        q(
            workspace,
            """SELECT count(*) FROM {ds}.invoice_items i LEFT JOIN {ds}.invoices v
                           USING (provider, account, invoice_id) WHERE v.invoice_id IS NULL""",
        )[0][0]
        == 0
    )
    assert (
        q(
            workspace,
            """SELECT count(*) FROM {ds}.invoices
                           WHERE abs(total - (subtotal + tax_total + shipping_total
                                              - withholding_total)) > 0.01""",
        )[0][0]
        == 0
    )
    assert q(workspace, "SELECT DISTINCT provider, account FROM {ds}.invoices") == [("kitchen", "acme")]


@pytest.mark.sockets  # real sockets and a subprocess, as a user runs it
def test_full_load_is_exact(workspace: Workspace) -> None:
    app = create_app(seed=11, clients=6, invoices=34)
    with serve(app) as server:
        result = run(workspace, app, server.url)
    assert result.code == 0, result.output
    assert_matches_sandbox(workspace, app)
    assert_invariants(workspace)
    # every page was read, with state=all
    pages = [e for e in app.log.entries() if e.path == "/api/invoices"]
    assert [e.query["page"][0] for e in pages] == ["1", "2", "3", "4"]
    assert {e.query["state"][0] for e in pages} == {"all"}

    source = {i["id"]: i for i in app.invoices}
    rows = q(
        workspace,
        """SELECT invoice_id, client_id, client_name, number, status, provider_status, is_archived,
                                  currency, subtotal, discount_total, tax_total, shipping_total, total,
                                  balance_due,
                                  paid_at IS NOT NULL, voided_at IS NOT NULL FROM {ds}.invoices""",
    )
    names = {c["id"]: c["name"] for c in app.clients}
    for (
        invoice_id,
        client_id,
        client_name,
        number,
        status,
        provider_status,
        archived,
        currency,
        subtotal,
        discount,
        tax,
        shipping,
        total,
        balance,
        paid,
        voided,
    ) in rows:
        raw = source[invoice_id]
        assert client_id == raw["client"] and client_name == names.get(raw["client"])
        assert number == raw["number"] and status == provider_status == raw["status"]
        assert archived == (raw["archived_at"] is not None) and currency == raw["currency"]
        assert total == raw["total_amount"] and tax == raw["tax_amount"] and shipping == raw["shipping_amount"]
        assert discount == raw["discount_amount"]
        assert subtotal == raw["total_amount"] - raw["tax_amount"] - raw["shipping_amount"]
        expected_balance = {"draft": None, "paid": 0, "void": 0}.get(status, raw["total_amount"])
        assert balance == expected_balance
        assert paid == (raw["paid_at"] is not None) and voided == (raw["voided_at"] is not None)
    # no-client invoices keep NULLs; archived ones are flagged
    assert (
        q(workspace, "SELECT count(*) FROM {ds}.invoices WHERE client_id IS NULL AND client_name IS NULL")[0][0]
        == sum(1 for i in app.invoices if i["client"] is None)
        > 0
    )
    assert (
        q(workspace, "SELECT count(*) FROM {ds}.invoices WHERE is_archived")[0][0]
        == sum(1 for i in app.invoices if i["archived_at"])
        > 0
    )
    # lines: quantity from its string, amount per unit, subtotal = quantity x amount
    lines = q(workspace, "SELECT item_id, quantity, unit_price, subtotal, name FROM {ds}.invoice_items")
    raw_items = {item["id"]: item for i in app.invoices for item in i["items"]}
    for item_id, quantity, unit_price, subtotal, name in lines:
        item = raw_items[item_id]
        assert quantity == Decimal(item["quantity"]) and unit_price == item["amount"] and name == item["title"]
        assert subtotal == quantity * unit_price
    assert q(workspace, "SELECT count(DISTINCT status) FROM {ds}.invoices")[0][0] == 5
    assert "kitchen   acme     loaded  6        35        " in result.output  # 34 and the published one


def test_rerun_writes_no_row(workspace: Workspace) -> None:
    app = create_app(seed=12, clients=5, invoices=25)
    with serve(app) as server:
        assert run(workspace, app, server.url).code == 0
        # A value only the warehouse holds: any rewrite of that invoice or its lines would erase it.
        sentinel = min((i for i in app.invoices if i["items"]), key=lambda i: i["created_at"])["id"]
        _mark(workspace, sentinel)
        before = snapshot(workspace)
        app.log.clear()
        second = run(workspace, app, server.url)
    assert second.code == 0, second.output
    assert "kitchen   acme     loaded  0        0         0      26" in second.output  # 25 and the published one
    assert q(workspace, "SELECT notes FROM {ds}.invoices WHERE invoice_id = ?", sentinel) == [("warehouse-only",)]
    assert {r[0] for r in q(workspace, "SELECT name FROM {ds}.invoice_items WHERE invoice_id = ?", sentinel)} == {
        "warehouse-only"
    }
    assert snapshot(workspace) == before
    # every page was still read: 25 invoices at 10 a page
    assert app.log.count(path_prefix="/api/invoices") == 3


def _mark(workspace: Workspace, invoice_id: str) -> None:
    import duckdb

    with duckdb.connect() as con:
        con.execute(f"ATTACH '{workspace.db}' AS warehouse")
        con.execute("USE warehouse")
        con.execute(f"UPDATE {DATASET}.invoices SET notes = 'warehouse-only' WHERE invoice_id = ?", [invoice_id])
        con.execute(f"UPDATE {DATASET}.invoice_items SET name = 'warehouse-only' WHERE invoice_id = ?", [invoice_id])


def test_update_to_an_old_invoice_on_the_last_page_propagates(workspace: Workspace) -> None:
    app = create_app(seed=13, clients=5, invoices=25)
    oldest = app.oldest_invoice_id()
    with serve(app) as server:
        assert run(workspace, app, server.url).code == 0
        untouched = next(i["id"] for i in app.invoices if i["id"] != oldest)
        _mark(workspace, untouched)
        app.update_invoice(oldest, memo="Paid by wire on the 3rd", currency="GBP")
        app.update_invoice(oldest, status="void")
        app.log.clear()
        result = run(workspace, app, server.url)
        last_page = app.log.entries()[-1]
    assert result.code == 0, result.output
    # the oldest invoice is the very last of the last page
    assert last_page.path == "/api/invoices" and last_page.query["page"] == ["3"]
    assert "kitchen   acme     loaded  0        1         " in result.output
    row = q(
        workspace,
        "SELECT notes, currency, status, voided_at IS NOT NULL, balance_due FROM {ds}.invoices WHERE invoice_id = ?",
        oldest,
    )
    assert row == [("Paid by wire on the 3rd", "GBP", "void", True, 0)]
    assert q(workspace, "SELECT notes FROM {ds}.invoices WHERE invoice_id = ?", untouched) == [("warehouse-only",)]
    assert_invariants(workspace)


def test_archived_invoice_is_loaded_and_archiving_propagates(workspace: Workspace) -> None:
    app = create_app(seed=14, clients=4, invoices=20)
    archived = next(i["id"] for i in app.invoices if i["archived_at"])
    active = next(i["id"] for i in app.invoices if not i["archived_at"])
    with serve(app) as server:
        assert run(workspace, app, server.url).code == 0
        assert q(workspace, "SELECT is_archived FROM {ds}.invoices WHERE invoice_id = ?", archived) == [(True,)]
        app.update_invoice(active, archived_at=NOW)
        assert run(workspace, app, server.url).code == 0
    assert q(workspace, "SELECT is_archived FROM {ds}.invoices WHERE invoice_id = ?", active) == [(True,)]
    assert_matches_sandbox(workspace, app)


def test_state_active_leaves_archived_invoices_out(workspace: Workspace) -> None:
    app = create_app(seed=14, clients=4, invoices=20)
    with serve(app) as server:
        result = run(workspace, app, server.url, SOURCES__KITCHEN__STATE="active")
    assert result.code == 0, result.output
    expected = sum(1 for i in app.invoices if not i["archived_at"])
    assert q(workspace, "SELECT count(*), count(*) FILTER (WHERE is_archived) FROM {ds}.invoices") == [(expected, 0)]
    assert {e.query["state"][0] for e in app.log.entries() if e.path == "/api/invoices"} == {"active"}


def test_removed_lines_propagate(workspace: Workspace) -> None:
    app = create_app(seed=15, clients=4, invoices=20)
    several = next(i for i in app.invoices if len(i["items"]) >= 3)
    single = next(i for i in app.invoices if len(i["items"]) == 1)
    with serve(app) as server:
        assert run(workspace, app, server.url).code == 0
        removed = app.remove_line(several["id"], 0)
        app.remove_line(single["id"])
        result = run(workspace, app, server.url)
    assert result.code == 0, result.output
    lines = q(
        workspace,
        "SELECT line_number, item_id FROM {ds}.invoice_items WHERE invoice_id = ? ORDER BY 1",
        several["id"],
    )
    assert [item_id for _, item_id in lines] == [item["id"] for item in app.invoice(several["id"])["items"]]
    assert [n for n, _ in lines] == list(range(1, len(lines) + 1))
    assert removed["id"] not in {item_id for _, item_id in lines}
    assert q(workspace, "SELECT count(*) FROM {ds}.invoice_items WHERE invoice_id = ?", single["id"]) == [(0,)]
    assert_matches_sandbox(workspace, app)
    assert_invariants(workspace)


def test_client_rename_reaches_its_invoices(workspace: Workspace) -> None:
    app = create_app(seed=16, clients=4, invoices=20)
    client = next(c for c in app.clients if any(i["client"] == c["id"] for i in app.invoices))
    count = sum(1 for i in app.invoices if i["client"] == client["id"])
    with serve(app) as server:
        assert run(workspace, app, server.url).code == 0
        app.update_client(client["id"], name="Renamed Studio Ltd")
        result = run(workspace, app, server.url)
    assert result.code == 0, result.output
    assert f"kitchen   acme     loaded  1        {count} " in result.output
    assert q(workspace, "SELECT DISTINCT client_name FROM {ds}.invoices WHERE client_id = ?", client["id"]) == [
        ("Renamed Studio Ltd",)
    ]
    assert q(workspace, "SELECT name FROM {ds}.clients WHERE client_id = ?", client["id"]) == [("Renamed Studio Ltd",)]


def test_bad_key_fails_clearly_without_leaking_it(workspace: Workspace) -> None:
    app = create_app(seed=17, clients=2, invoices=3)
    with serve(app) as server:
        result = run(workspace, app, server.url, SOURCES__KITCHEN__API_KEY="kt_wrong_91c3e5f7a2b4")
    assert result.code == 1
    assert "kitchen [acme]" in result.output and "HTTP 401" in result.output
    assert "SOURCES__KITCHEN__API_KEY" in result.output
    assert "kt_wrong_91c3e5f7a2b4" not in result.output


def test_login_redirect_is_reported_as_an_auth_problem(workspace: Workspace) -> None:
    app = create_app(seed=17, clients=2, invoices=3, honour_json_headers=False)
    with serve(app) as server:
        result = run(workspace, app, server.url, SOURCES__KITCHEN__API_KEY="kt_wrong_55aa66bb77cc")
    assert result.code == 1
    assert "redirected to a login page (https://acme.kitchen.co/login)" in result.output
    assert "SOURCES__KITCHEN__API_KEY" in result.output and "kt_wrong_55aa66bb77cc" not in result.output


def test_invalid_state_shows_the_laravel_error(workspace: Workspace) -> None:
    app = create_app(seed=17, clients=2, invoices=3)
    with serve(app) as server:
        result = run(workspace, app, server.url, SOURCES__KITCHEN__STATE="deleted")
    assert result.code == 1
    assert "HTTP 422" in result.output and "The selected state is invalid." in result.output
    assert "check state (all, active, archived)" in result.output


def test_rate_limited_load_waits_and_stays_exact(workspace: Workspace) -> None:
    app = create_app(seed=18, clients=3, invoices=15, requests_per_minute=2, rate_window=1)
    with serve(app) as server:
        result = run(workspace, app, server.url)
    assert result.code == 0, result.output
    assert app.log.count(status=429) >= 1
    assert_matches_sandbox(workspace, app)
