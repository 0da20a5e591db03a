"""What a run notes to find deletions (sources/shared/deletions.py), at the driver's seam: the ids
every listing held, which scopes were read completely, and when an incremental listing is swept
in full (`reconcile_every`, on the driver's clock).

A scope is complete only when every page of it was read, stable, unfiltered and not incremental:
a listing whose reported total moved while it was read, or one narrowed by the account's own
filter (Kitchen `state`, Fohlio `project_id`, InvoiceXpress `statuses`), never is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import httpx
import pytest

from sandbox.fohlio import create_app as fohlio_app
from sandbox.invoicexpress import create_app as invoicexpress_app
from sandbox.kitchen import create_app as kitchen_app
from sources.fohlio import PROVIDER as FOHLIO
from sources.invoicexpress import PROVIDER as INVOICEXPRESS
from sources.kitchen import PROVIDER as KITCHEN
from sources.shared.deletions import ACCOUNT
from sources.shared.driver import SWEPT_AT, SWEPT_PENDING, forget_sweeps, sweeps_marked
from tests.shared.driving import Clock, Recording, account_of, run

DAY = dt.timedelta(days=1)


# --- complete and incomplete scopes -------------------------------------------------------------


def test_a_full_unfiltered_listing_is_a_complete_scope_holding_every_id() -> None:
    app = kitchen_app()
    api, account = account_of(KITCHEN, app, per_page=10)
    ran = run(api, account, {})
    assert ran.listed.scopes == {"invoices": {ACCOUNT}, "clients": {ACCOUNT}}
    assert ran.listed.ids["invoices"] == {str(i["id"]) for i in app.invoices}
    assert ran.listed.ids["clients"] == {str(c["id"]) for c in app.clients}
    assert ran.listed.covers("invoices", None) and ran.listed.covers("clients", None)
    assert not ran.listed.by_client and not ran.listed.swept


def test_a_listing_whose_total_moved_while_read_is_incomplete_and_moves_no_cursor() -> None:
    app = kitchen_app()
    transport = Recording(app.transport())
    api, account = account_of(KITCHEN, app, transport, per_page=10)
    states: dict[str, Any] = {}
    run(api, account, states)
    mark = dict(states["acme"]["updated_at"])

    created: list[str] = []

    def create_after_first_page(request: httpx.Request, response: httpx.Response) -> None:
        if request.url.path == "/api/invoices" and not created:
            created.append(app.add_invoice(app.clients[0]["id"]))

    transport.after = create_after_first_page
    shifted = run(api, account, states)
    assert shifted.listed.scopes["invoices"] == set()  # the pages shifted: no deletion may be read from it
    assert shifted.listed.scopes["clients"] == {ACCOUNT}
    assert created[0] not in shifted.listed.ids["invoices"]  # created before page 1, after it was served
    assert shifted.listed.ids["invoices"] == {str(i["id"]) for i in app.invoices} - set(created)
    assert states["acme"]["updated_at"] == mark

    transport.after = None
    again = run(api, account, states)
    assert again.ids() == created
    assert again.listed.scopes["invoices"] == {ACCOUNT}
    assert states["acme"]["updated_at"]["ids_at_last_value"] == created


def test_a_listing_narrowed_by_the_account_filter_is_never_complete() -> None:
    kitchen = kitchen_app()
    api, account = account_of(KITCHEN, kitchen, per_page=10, state="active")
    ran = run(api, account, {})
    active = {str(i["id"]) for i in kitchen.invoices if i["archived_at"] is None}
    assert ran.listed.ids["invoices"] == active and len(active) < len(kitchen.invoices)
    assert ran.listed.scopes == {"invoices": set(), "clients": {ACCOUNT}}
    assert not ran.listed.covers("invoices", None)

    fohlio = fohlio_app()
    project = min(fohlio.team.projects)
    transport = Recording(fohlio.transport())
    api, account = account_of(FOHLIO, fohlio, transport, per_page=10, project_id=str(project))
    states: dict[str, Any] = {}
    ran = run(api, account, states)
    assert ran.listed.ids["invoices"] == {str(i.id) for i in fohlio.team.invoices.values() if i.project_id == project}
    assert ran.listed.scopes == {"invoices": set(), "clients": {ACCOUNT}}
    # Never swept either (a sweep of it could show no deletion): only the contacts' sweep is pending.
    assert set(states["default"][SWEPT_PENDING]) == {"contacts_listed_at"}
    assert f"invoices:project:{project}" in states["default"] and "invoices" not in states["default"]
    assert all(s.params["project_id"] == [str(project)] for s in transport.sent("/client_invoices"))

    invoicexpress = invoicexpress_app(clients=3, requests_per_minute=None)
    api, account = account_of(INVOICEXPRESS, invoicexpress, per_page=10, statuses=["final"])
    ran = run(api, account, {})
    assert ran.listed.scopes == {"invoices": set(), "clients": {ACCOUNT}}
    assert ran.listed.by_client
    listed_client = str(invoicexpress.account.client_id(0))
    assert not ran.listed.covers("invoices", listed_client)
    # A client the complete clients listing no longer holds: its documents are gone with it.
    assert ran.listed.covers("invoices", "999999")


def test_per_client_scopes_are_complete_one_client_at_a_time() -> None:
    app = invoicexpress_app(clients=3, requests_per_minute=None)
    gone = str(app.account.client_id(1))
    app.delete_client(int(gone), listed=True)  # still listed, its documents answer 404
    api, account = account_of(INVOICEXPRESS, app, per_page=4)
    ran = run(api, account, {})
    others = {str(app.account.client_id(0)), str(app.account.client_id(2)), str(app.fixture_clients[0]["id"])}
    assert ran.listed.scopes["invoices"] == others
    assert ran.listed.holds("clients", gone) and not ran.listed.covers("invoices", gone)
    assert ran.stats.skipped_examples["client not found (HTTP 404) when listing its documents"] == [gone]


# --- unmapped records under a narrowed listing ---------------------------------------------------


def unmapped_archived_kitchen() -> tuple[Any, str]:
    app = kitchen_app()
    archived = next(i for i in app.invoices if i["archived_at"] is not None)
    archived["status"] = "on_hold"  # not a documented status: kept unmapped
    return app, str(archived["id"])


def unmapped_invoicexpress(client: int) -> tuple[Any, str]:
    app = invoicexpress_app(clients=3, requests_per_minute=None)
    invoice = next(i for i in app.all_invoices() if i["client"]["id"] == app.account.client_id(client))
    app.update_invoice(invoice["id"], status="on_hold")
    return app, str(invoice["id"])


def test_an_unmapped_record_a_complete_listing_no_longer_holds_is_taken_out() -> None:
    app, broken = unmapped_archived_kitchen()
    api, account = account_of(KITCHEN, app, per_page=10)
    states: dict[str, Any] = {}
    assert broken in run(api, account, states).unmapped()
    app.delete_invoice(broken)
    ran = run(api, account, states)
    assert ran.unmapped()[broken]["_tombstone"] is True
    assert states["acme"]["unmapped"]["invoice"] == {}


@pytest.mark.parametrize("narrowed", ["kitchen state=active", "invoicexpress client_ids", "invoicexpress statuses"])
def test_a_narrowed_listing_keeps_the_unmapped_records_it_cannot_see(narrowed: str) -> None:
    states: dict[str, Any] = {}
    narrowing: dict[str, Any]
    if narrowed.startswith("kitchen"):
        app, broken = unmapped_archived_kitchen()
        label, provider, narrowing = "acme", KITCHEN, {"state": "active"}
    else:
        app, broken = unmapped_invoicexpress(client=0)
        label, provider = "sandbox", INVOICEXPRESS
        other = str(app.account.client_id(1))
        narrowing = {"client_ids": [other]} if narrowed.endswith("client_ids") else {"statuses": ["final"]}
    api, account = account_of(provider, app, per_page=10)
    first = run(api, account, states)
    assert broken in first.unmapped() and set(states[label]["unmapped"]["invoice"]) == {broken}

    api, account = account_of(provider, app, per_page=10, **narrowing)
    ran = run(api, account, states)
    assert broken not in ran.listed.ids["invoices"]  # the narrowed listing never saw it
    assert broken not in ran.unmapped()  # so it says nothing about it: no tombstone
    assert set(states[label]["unmapped"]["invoice"]) == {broken}


def test_choosing_clients_keeps_the_unmapped_clients_not_chosen() -> None:
    app = invoicexpress_app(clients=3, requests_per_minute=None)
    app.update_client(app.account.client_id(0), id=None)  # listed without an id: cannot be mapped
    api, account = account_of(INVOICEXPRESS, app, per_page=10)
    states: dict[str, Any] = {}
    [key] = run(api, account, states).unmapped()
    assert set(states["sandbox"]["unmapped"]["client"]) == {key}

    api, account = account_of(INVOICEXPRESS, app, per_page=10, client_ids=[str(app.account.client_id(1))])
    ran = run(api, account, states)
    assert key not in ran.unmapped()
    assert set(states["sandbox"]["unmapped"]["client"]) == {key}


# --- sweeps of incremental listings -------------------------------------------------------------


def fohlio(**given: Any) -> tuple[Any, Recording, Any, Any]:
    app = fohlio_app()
    transport = Recording(app.transport())
    api, account = account_of(FOHLIO, app, transport, per_page=25, **given)
    return app, transport, api, account


def swept(transport: Recording) -> bool:
    """Whether the run read both listings without their change filter."""
    sent = transport.sent("/client_invoices") + transport.sent("/contacts")
    return all("updated_since" not in s.params for s in sent)


def test_an_incremental_listing_is_swept_in_full_again_after_reconcile_every(clock: Clock) -> None:
    app, transport, api, account = fohlio()
    states: dict[str, Any] = {}
    every = {str(i) for i in app.team.invoices} | {str(i) for i in app.published}

    first = run(api, account, states)
    assert swept(transport) and first.listed.swept
    assert first.listed.scopes == {"invoices": {ACCOUNT}, "clients": {ACCOUNT}}
    started = int(clock.now)
    assert states["default"][SWEPT_PENDING] == {"invoices": started, "contacts_listed_at": started}
    assert sweeps_marked(states["default"])  # the run's deletions were marked
    assert states["default"][SWEPT_AT] == {"invoices": started, "contacts_listed_at": started}
    assert SWEPT_PENDING not in states["default"]

    for step in (DAY, 5 * DAY):  # one day, then six days after the sweep
        clock.advance(step)
        transport.events.clear()
        incremental = run(api, account, states)
        assert not swept(transport) and not incremental.listed.swept
        assert incremental.listed.scopes == {"invoices": set(), "clients": set()}
        assert SWEPT_PENDING not in states["default"]

    clock.advance(DAY)  # seven days after the last sweep
    transport.events.clear()
    again = run(api, account, states)
    assert swept(transport) and again.listed.swept
    assert again.listed.ids["invoices"] == every
    assert again.listed.scopes == {"invoices": {ACCOUNT}, "clients": {ACCOUNT}}
    assert again.ids() == []  # read in full, but nothing changed: nothing written
    assert states["default"][SWEPT_PENDING] == {"invoices": int(clock.now), "contacts_listed_at": int(clock.now)}


def test_a_sweep_whose_deletions_were_not_marked_is_swept_again_next_run(clock: Clock) -> None:
    _, transport, api, account = fohlio()
    states: dict[str, Any] = {}
    run(api, account, states)
    assert sweeps_marked(states["default"])
    clock.advance(7 * DAY)
    transport.events.clear()
    run(api, account, states)  # swept and loaded, but stopped before its deletions were marked
    assert swept(transport) and set(states["default"][SWEPT_PENDING]) == {"invoices", "contacts_listed_at"}

    # Even once sweeps are due far less often, the unmarked sweep is done again at once.
    monthly = dataclasses.replace(account, reconcile_every=30 * DAY)
    clock.advance(dt.timedelta(minutes=5))
    transport.events.clear()
    again = run(api, monthly, states)
    assert swept(transport) and again.listed.swept
    assert sweeps_marked(states["default"])

    clock.advance(dt.timedelta(minutes=5))
    transport.events.clear()
    run(api, account, states)
    assert not swept(transport)

    assert forget_sweeps(states["default"])  # its deletions were refused: every sweep due again
    transport.events.clear()
    run(api, account, states)
    assert swept(transport)


def test_reconcile_every_zero_sweeps_every_run(clock: Clock) -> None:
    _, transport, api, account = fohlio(reconcile_every_days=0)
    states: dict[str, Any] = {}
    for _ in range(3):
        transport.events.clear()
        ran = run(api, account, states)
        sweeps_marked(states["default"])
        assert swept(transport) and ran.listed.scopes["invoices"] == {ACCOUNT}
        clock.advance(dt.timedelta(seconds=1))
