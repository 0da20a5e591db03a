"""Deletions reach the warehouse (docs/canonical-model.md, "Deletions"), through the real command
line against the sandboxes: rows a complete listing no longer holds get `deleted_at`, rows that
come back are cleared, incomplete listings delete nothing, the mass-delete guard refuses until
confirmed, Fohlio's deletions are found by its periodic sweep, and a client whose listing fails
is skipped and read again by the next run."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from sandbox import flowpayroll, fohlio, invoicexpress, kitchen
from sandbox.framework import App
from tests.support import Result, Workspace, serve

pytestmark = pytest.mark.integration

# A failing request gives up within a second instead of retrying for two minutes.
FAST_FAILURE = {"REQUEST_DEADLINE": "1", "HTTP_TIMEOUT": "1"}


def live(ws: Workspace, table: str, provider: str) -> int:
    return int(ws.scalar(f"SELECT count(*) FROM billing.{table} WHERE provider = ? AND deleted_at IS NULL", provider))


def deleted_ids(ws: Workspace, table: str, provider: str) -> set[str]:
    key = "invoice_id" if table == "invoices" else "client_id"
    rows = ws.query(f"SELECT {key} FROM billing.{table} WHERE provider = ? AND deleted_at IS NOT NULL", provider)
    return {str(r[0]) for r in rows}


def last_run(ws: Workspace, provider: str) -> tuple[Any, ...]:
    rows = ws.query(
        "SELECT status, deleted, message FROM billing.pipeline_runs WHERE provider = ? ORDER BY finished_at DESC",
        provider,
    )
    return rows[0]


def one_invoice_and_one_client(app: App) -> tuple[str, str]:
    """An invoice to delete, and a client (another one, with invoices) to delete with its documents."""
    if isinstance(app, kitchen.KitchenApp):
        invoice = app.invoices[0]
        client = next(c["id"] for c in app.clients if c["id"] != invoice["client"])
        return str(invoice["id"]), str(client)
    if isinstance(app, flowpayroll.FlowPayrollSandbox):
        first, second = list(app.clients)[:2]
        return str(app.invoices_of(first)[0]["id"]), str(second)
    if isinstance(app, fohlio.FohlioSandbox):
        record = next(iter(app.team.invoices.values()))
        contact = next(i.client_id for i in app.team.invoices.values() if i.client_id != record.client_id)
        return str(record.id), str(contact)
    assert isinstance(app, invoicexpress.InvoiceXpressSandbox)
    documents = app.all_invoices()
    opening = documents[0]
    other = next(i["client"]["id"] for i in documents if i["client"]["id"] != opening["client"]["id"])
    return str(opening["id"]), str(other)


def native(app: App, record_id: str) -> Any:
    """The sandbox's own id type (integers for InvoiceXpress and Fohlio)."""
    return int(record_id) if isinstance(app, (invoicexpress.InvoiceXpressSandbox, fohlio.FohlioSandbox)) else record_id


PROVIDERS = {
    "invoicexpress": invoicexpress.create_app,
    "flowpayroll": flowpayroll.create_app,
    "kitchen": kitchen.create_app,
    "fohlio": fohlio.create_app,
}


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_what_is_deleted_upstream_is_marked_deleted_and_left_out_of_the_views(workspace: Workspace, provider: str):
    app = PROVIDERS[provider](seed=7)
    with serve(app) as server:
        # The guard is tested on its own; here a client with its invoices may be a large share.
        env = {**app.pipeline_env(server.url), "MAX_DELETE_FRACTION": "0.5"}
        first = workspace.run(env)
        assert first.code == 0, first.output
        invoice_id, client_id = one_invoice_and_one_client(app)
        lines = workspace.scalar(
            "SELECT count(*) FROM billing.invoice_items WHERE provider = ? AND invoice_id = ?", provider, invoice_id
        )
        app.delete_invoice(native(app, invoice_id))
        app.delete_client(native(app, client_id))
        # Fohlio reads incrementally: only its sweep, due at every run with 0 days, sees deletions.
        again = workspace.run({**env, "SOURCES__FOHLIO__RECONCILE_EVERY_DAYS": "0"})
    assert again.code == 0, again.output
    expected = app.summary()
    assert live(workspace, "invoices", provider) == expected["invoices"]
    assert live(workspace, "clients", provider) == expected["clients"]
    assert invoice_id in deleted_ids(workspace, "invoices", provider)
    assert client_id in deleted_ids(workspace, "clients", provider)
    # Nothing is removed: the deleted invoice keeps its row and its lines, so history is kept.
    assert workspace.scalar("SELECT count(*) FROM billing.invoices WHERE invoice_id = ?", invoice_id) == 1
    assert (
        workspace.scalar(
            "SELECT count(*) FROM billing.invoice_items WHERE provider = ? AND invoice_id = ?", provider, invoice_id
        )
        == lines
    )
    # Every view reads `invoices_current`, which leaves deleted documents out.
    assert workspace.scalar("SELECT count(*) FROM billing.invoices_current WHERE invoice_id = ?", invoice_id) == 0
    assert workspace.scalar("SELECT count(*) FROM billing.invoices_current WHERE provider = ?", provider) == live(
        workspace, "invoices", provider
    )
    marked = len(deleted_ids(workspace, "invoices", provider)) + len(deleted_ids(workspace, "clients", provider))
    status, deleted, message = last_run(workspace, provider)
    assert (status, deleted) == ("loaded", marked)
    assert "marked deleted (no longer listed upstream)" in message
    assert "marked deleted (no longer listed upstream)" in again.stderr


def test_an_invoice_that_comes_back_is_cleared_even_when_unchanged(workspace: Workspace):
    app = kitchen.create_app(seed=3)
    with serve(app) as server:
        env = app.pipeline_env(server.url)
        assert workspace.run(env).code == 0
        invoice = app.invoices[5]
        app.delete_invoice(str(invoice["id"]))
        gone = workspace.run(env)
        assert gone.code == 0, gone.output
        assert deleted_ids(workspace, "invoices", "kitchen") == {str(invoice["id"])}
        deleted_at = workspace.scalar("SELECT deleted_at FROM billing.invoices WHERE invoice_id = ?", invoice["id"])
        assert isinstance(deleted_at, dt.datetime) and deleted_at.tzinfo is not None
        with app.lock:  # restored exactly as it was: its `updated_at` did not move
            app.invoices.insert(5, invoice)
        back = workspace.run(env)
    assert back.code == 0, back.output
    assert back.summary()["kitchen"]["invoices"] == "0"  # unchanged, so not rewritten, yet cleared
    assert deleted_ids(workspace, "invoices", "kitchen") == set()
    assert "listed again, no longer deleted: 1 invoices" in back.stderr
    assert workspace.scalar("SELECT count(*) FROM billing.invoices_current WHERE invoice_id = ?", invoice["id"]) == 1


def test_a_failed_or_narrowed_listing_marks_nothing_deleted(workspace: Workspace):
    app = kitchen.create_app(seed=4)
    with serve(app) as server:
        env = {**app.pipeline_env(server.url), "SOURCES__KITCHEN__PER_PAGE": "10"}
        assert workspace.run(env).code == 0
        app.delete_invoice(str(app.invoices[0]["id"]))
        # The listing fails on its third page: the account fails and nothing is marked.
        app.inject("status", "/api/invoices", after=2, times=None, status=503)
        failed = workspace.run({**env, **FAST_FAILURE})
        assert failed.code == 1, failed.output
        assert deleted_ids(workspace, "invoices", "kitchen") == set()
        app.faults.clear()
        # A listing narrowed by the account's filter is not the account's listing: nothing marked.
        narrowed = workspace.run({**env, "SOURCES__KITCHEN__STATE": "active"})
        assert narrowed.code == 0, narrowed.output
        assert deleted_ids(workspace, "invoices", "kitchen") == set()
        complete = workspace.run(env)
    assert complete.code == 0, complete.output
    assert len(deleted_ids(workspace, "invoices", "kitchen")) == 1


def test_fohlio_deletions_are_found_by_the_periodic_sweep_only(workspace: Workspace):
    app = fohlio.create_app(seed=5)
    with serve(app) as server:
        env = app.pipeline_env(server.url)
        assert workspace.run(env).code == 0  # the first run reads everything: a sweep
        invoice_id = next(iter(app.team.invoices))
        app.delete_invoice(invoice_id)
        app.log.clear()
        incremental = workspace.run(env)
        assert incremental.code == 0, incremental.output
        assert all("updated_since" in e.query for e in app.log.entries() if e.path == "/client_invoices")
        assert deleted_ids(workspace, "invoices", "fohlio") == set()
        app.log.clear()
        swept = workspace.run({**env, "SOURCES__FOHLIO__RECONCILE_EVERY_DAYS": "0"})
        assert swept.code == 0, swept.output
        sweep = [e for e in app.log.entries() if e.path in ("/client_invoices", "/contacts")]
        assert sweep and all("updated_since" not in e.query for e in sweep)
        assert deleted_ids(workspace, "invoices", "fohlio") == {str(invoice_id)}
        # The sweep's time is kept: with the default week, the next run is incremental again.
        app.log.clear()
        assert workspace.run(env).code == 0
    assert all("updated_since" in e.query for e in app.log.entries() if e.path == "/client_invoices")


def refused(result: Result, provider: str) -> str:
    assert result.code == 1, result.output
    assert result.summary()[provider]["status"] == "failed"
    return result.stderr


def test_a_mass_delete_is_refused_until_confirmed(workspace: Workspace):
    app = kitchen.create_app(seed=6)
    with serve(app) as server:
        env = app.pipeline_env(server.url)
        assert workspace.run(env).code == 0
        total = len(app.invoices)
        doomed = [str(i["id"]) for i in app.invoices[: total // 3]]
        for invoice_id in doomed:
            app.delete_invoice(invoice_id)
        first = refused(workspace.run(env), "kitchen")
        assert f"deletions refused: the complete listings no longer hold {len(doomed)} of its {total} invoices" in first
        assert "--allow-mass-delete" in first and "SOURCES__KITCHEN__MAX_DELETE_FRACTION" in first
        assert deleted_ids(workspace, "invoices", "kitchen") == set()
        status, deleted, message = last_run(workspace, "kitchen")
        assert (status, deleted) == ("failed", 0) and "deletions refused" in message
        # The refusal stands, run after run, until the user confirms.
        refused(workspace.run(env), "kitchen")
        confirmed = workspace.run(env, "load", "--allow-mass-delete")
        assert confirmed.code == 0, confirmed.output
        assert deleted_ids(workspace, "invoices", "kitchen") == set(doomed)
        assert last_run(workspace, "kitchen")[:2] == ("loaded", len(doomed))
        # Confirmed once: the next run has nothing more to delete and exits 0.
        assert workspace.run(env).code == 0
        # A higher share set for the account lets a large deletion through without the flag.
        for invoice in list(app.invoices[: len(app.invoices) // 2]):
            app.delete_invoice(str(invoice["id"]))
        allowed = workspace.run({**env, "SOURCES__KITCHEN__MAX_DELETE_FRACTION": "0.9"})
    assert allowed.code == 0, allowed.output


def test_a_refused_sweep_is_due_again_on_the_next_run(workspace: Workspace):
    app = fohlio.create_app(seed=8)
    with serve(app) as server:
        env = app.pipeline_env(server.url)
        assert workspace.run(env).code == 0
        for invoice_id in list(app.team.invoices)[:20]:
            app.delete_invoice(invoice_id)
        refused(workspace.run({**env, "SOURCES__FOHLIO__RECONCILE_EVERY_DAYS": "0"}), "fohlio")
        # Not swept for a week by the setting, yet swept again: the refused deletions stand.
        app.log.clear()
        refused(workspace.run(env), "fohlio")
        assert any("updated_since" not in e.query for e in app.log.entries() if e.path == "/client_invoices")
        assert workspace.run(env, "load", "--allow-mass-delete").code == 0
    assert len(deleted_ids(workspace, "invoices", "fohlio")) == 20


def test_a_bad_max_delete_fraction_stops_the_run_before_it_starts(workspace: Workspace):
    app = kitchen.create_app(seed=1, clients=2, invoices=3)
    with serve(app) as server:
        result = workspace.run({**app.pipeline_env(server.url), "MAX_DELETE_FRACTION": "20%"})
    assert result.code == 2, result.output
    assert "MAX_DELETE_FRACTION = '20%' must be a number from 0 to 1" in result.stderr
    assert not workspace.db.exists()


def test_a_client_whose_listing_fails_is_skipped_and_loaded_next_run(workspace: Workspace):
    app = flowpayroll.create_app(seed=9)
    with serve(app) as server:
        env = app.pipeline_env(server.url)
        assert workspace.run(env).code == 0
        failing, other = list(app.clients)[:2]
        failing_invoice, other_invoice = app.invoices_of(failing)[0]["id"], app.invoices_of(other)[0]["id"]
        app.update_invoice(failing_invoice, reference="changed while its client fails")
        app.update_invoice(other_invoice, reference="changed beside it")
        app.delete_invoice(app.invoices_of(failing)[1]["id"])
        app.inject("status", f"/v1/billing/clients/{failing}/invoices", times=None, status=503)
        skipped = workspace.run({**env, **FAST_FAILURE})
        assert skipped.code == 0, skipped.output
        assert f"documents not listed (HTTP 503 after retries); read again next run (e.g. {failing})" in skipped.stderr
        reference = "SELECT reference FROM billing.invoices WHERE invoice_id = ?"
        assert workspace.scalar(reference, other_invoice) == "changed beside it"  # the others' rows load
        assert workspace.scalar(reference, failing_invoice) != "changed while its client fails"
        assert deleted_ids(workspace, "invoices", "flowpayroll") == set()  # never taken as deleted
        status, _, message = last_run(workspace, "flowpayroll")
        assert status == "loaded" and "could not be listed" in message
        app.faults.clear()
        recovered = workspace.run(env)
    assert recovered.code == 0, recovered.output
    # The account's cursor did not move past what the failing client missed.
    assert workspace.scalar(reference, failing_invoice) == "changed while its client fails"
    assert len(deleted_ids(workspace, "invoices", "flowpayroll")) == 1
    assert live(workspace, "invoices", "flowpayroll") == app.summary()["invoices"]


def test_when_no_client_can_be_listed_the_account_fails(workspace: Workspace):
    app = invoicexpress.create_app(seed=10, clients=3)
    with serve(app) as server:
        env = app.pipeline_env(server.url)
        assert workspace.run(env).code == 0
        app.inject("status", "/clients/{client_id}/invoices.json", times=None, status=502)
        down = workspace.run({**env, **FAST_FAILURE})
    assert down.code == 1, down.output
    assert down.summary()["invoicexpress"]["status"] == "failed"
    assert deleted_ids(workspace, "invoices", "invoicexpress") == set()
