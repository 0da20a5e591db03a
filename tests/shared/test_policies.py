"""The cursor policies as the driver runs them, run after run against the sandboxes in-process:
what each run writes, what it asks the API for, and what it leaves in the account's state.

- `UpdatedAt` (Kitchen): every page is read, only what changed is written; a record that did not
  map is tried again by id until it maps; a renamed client's invoices are written again.
- `UpdatedSince` (Fohlio invoices): the API is asked from the mark minus the overlap; inside the
  overlap only a changed timestamp is written again; a record that did not map holds the mark.
- `ListedSince` (Fohlio contacts): asked from the start of the previous listing minus the overlap.
- `FullListing` (InvoiceXpress): everything, every run.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sandbox.fohlio import create_app as fohlio_app
from sandbox.invoicexpress import create_app as invoicexpress_app
from sandbox.kitchen import create_app as kitchen_app
from sources.fohlio import PROVIDER as FOHLIO
from sources.invoicexpress import PROVIDER as INVOICEXPRESS
from sources.kitchen import PROVIDER as KITCHEN
from sources.shared.driver import SWEPT_PENDING, sweeps_marked
from sources.shared.structure import STATE_KEY as STRUCTURE
from tests.shared.driving import Recording, account_of, run

OVERLAP = dt.timedelta(seconds=600)


# --- UpdatedAt: Kitchen ---------------------------------------------------------------------


def kitchen() -> tuple[Any, Recording, Any, Any]:
    app = kitchen_app()  # 8 clients, 45 invoices and the published example: 5 pages of 10
    transport = Recording(app.transport())
    api, account = account_of(KITCHEN, app, transport, per_page=10)
    return app, transport, api, account


def test_updated_at_a_second_run_with_nothing_changed_writes_nothing_but_reads_every_page() -> None:
    app, transport, api, account = kitchen()
    states: dict[str, Any] = {}
    first = run(api, account, states)
    listed = len(app.invoices)
    assert sorted(first.ids()) == sorted(str(i["id"]) for i in app.invoices)
    assert len(first.rows("clients")) == len(app.clients)
    newest = max(app.invoices, key=lambda i: i["updated_at"])
    assert states["acme"]["updated_at"]["last_value"] == dt.datetime.fromisoformat(newest["updated_at"]).isoformat()

    transport.events.clear()
    second = run(api, account, states)
    assert second.rows("invoices") == second.rows("invoice_items") == second.rows("clients") == []
    assert (second.stats.invoices, second.stats.unchanged) == (0, listed)
    # Kitchen has no update filter: the whole listing is read again, page by page.
    assert [s.params["page"] for s in transport.sent("/api/invoices")] == [[str(n)] for n in range(1, 6)]


def test_updated_at_writes_only_the_invoice_that_changed_with_its_lines() -> None:
    app, _, api, account = kitchen()
    states: dict[str, Any] = {}
    run(api, account, states)
    changed = str(next(i for i in app.invoices if len(i["items"]) > 2)["id"])
    app.remove_line(changed)

    second = run(api, account, states)
    assert second.ids() == [changed]
    lines = [(row["invoice_id"], row["line_number"]) for row in second.rows("invoice_items")]
    assert lines == [(changed, n) for n in range(1, len(app.invoice(changed)["items"]) + 1)]
    assert second.rows("invoices")[0]["updated_at"] == dt.datetime.fromisoformat(app.invoice(changed)["updated_at"])
    assert second.stats.unchanged == len(app.invoices) - 1
    assert (
        states["acme"]["updated_at"]["last_value"]
        == dt.datetime.fromisoformat(app.invoice(changed)["updated_at"]).isoformat()
    )


def test_updated_at_an_unmapped_record_is_tried_again_every_run_until_it_maps() -> None:
    app, _, api, account = kitchen()
    states: dict[str, Any] = {}
    run(api, account, states)
    broken = str(app.invoices[3]["id"])
    app.update_invoice(broken, status="on_hold")  # not a documented Kitchen status

    second = run(api, account, states)
    assert broken not in second.ids()
    row = second.unmapped()[broken]
    assert row["reason"] == "status: unknown Kitchen status 'on_hold'"
    assert row["record_type"] == "invoice" and not row["_tombstone"]
    assert set(states["acme"]["unmapped"]["invoice"]) == {broken}
    first_seen = row["first_seen_at"]
    # The cursor moved past it (every page is read anyway): the record is retried by id.
    assert (
        states["acme"]["updated_at"]["last_value"]
        == dt.datetime.fromisoformat(app.invoice(broken)["updated_at"]).isoformat()
    )

    third = run(api, account, states)  # nothing changed: tried again, still unmapped, first seen kept
    assert third.ids() == []
    assert third.unmapped()[broken]["first_seen_at"] == first_seen
    assert third.unmapped()[broken]["last_seen_at"] >= first_seen
    assert third.stats.unchanged == len(app.invoices) - 1

    # Fixed without its timestamp moving (as when the mapping learns the value): written now.
    next(i for i in app.invoices if i["id"] == broken)["status"] = "open"
    fourth = run(api, account, states)
    assert fourth.ids() == [broken]
    assert fourth.unmapped() == {broken: fourth.unmapped()[broken]}
    assert fourth.unmapped()[broken]["_tombstone"] is True
    assert states["acme"]["unmapped"]["invoice"] == {}

    fifth = run(api, account, states)
    assert fifth.ids() == [] and fifth.unmapped() == {}


def test_updated_at_a_renamed_client_rewrites_its_invoices_and_only_those() -> None:
    app, _, api, account = kitchen()
    states: dict[str, Any] = {}
    run(api, account, states)
    counts: dict[str, int] = {}
    for invoice in app.invoices:
        if invoice["client"]:
            counts[invoice["client"]] = counts.get(invoice["client"], 0) + 1
    client = max(counts, key=lambda c: counts[c])
    app.update_client(client, name="Renamed Studio")

    second = run(api, account, states)
    assert [row["client_id"] for row in second.rows("clients")] == [client]
    assert second.rows("clients")[0]["name"] == "Renamed Studio"
    assert sorted(second.ids()) == sorted(str(i["id"]) for i in app.invoices if i["client"] == client)
    assert {row["client_name"] for row in second.rows("invoices")} == {"Renamed Studio"}
    assert states["acme"]["client_names"][client] == "Renamed Studio"

    third = run(api, account, states)
    assert third.ids() == [] and third.rows("clients") == []


# --- UpdatedSince: Fohlio invoices ------------------------------------------------------------


def fohlio(**options: Any) -> tuple[Any, Recording, Any, Any]:
    app = fohlio_app(**options)
    transport = Recording(app.transport())
    api, account = account_of(FOHLIO, app, transport, per_page=25)
    return app, transport, api, account


def loaded(api: Any, account: Any, states: dict[str, Any]) -> Any:
    """One run, then its sweep's deletions marked, as the pipeline does once the run is loaded."""
    ran = run(api, account, states)
    sweeps_marked(states["default"])
    return ran


def since(transport: Recording, path: str) -> list[list[str] | None]:
    return [s.params.get("updated_since") for s in transport.sent(path)]


def test_updated_since_asks_from_the_mark_minus_the_overlap() -> None:
    app, transport, api, account = fohlio()
    states: dict[str, Any] = {}
    first = loaded(api, account, states)
    assert since(transport, "/client_invoices") == [None, None, None]  # the first run sweeps in full
    mark = app.max_updated_at()
    assert states["default"]["invoices"]["last_value"] == mark.isoformat()
    assert len(first.ids()) == len(app.team.invoices) + len(app.published)

    transport.events.clear()
    second = loaded(api, account, states)
    expected = str(int((mark - OVERLAP).timestamp()))
    assert since(transport, "/client_invoices") == [[expected]]
    # Only the invoices at the mark came back, and were seen before at that very timestamp.
    at_mark = [i for i in app.team.invoices.values() if i.updated_at == mark]
    assert second.ids() == [] and second.stats.unchanged == len(at_mark)


def test_updated_since_inside_the_overlap_only_a_changed_timestamp_is_written_again() -> None:
    app, _, api, account = fohlio()
    mark = app.max_updated_at()
    late, early = sorted(i for i, v in app.team.invoices.items() if v.updated_at < mark - OVERLAP)[:2]
    app.update_invoice(late, updated_at=mark - dt.timedelta(seconds=100))
    app.update_invoice(early, updated_at=mark - dt.timedelta(seconds=200))
    states: dict[str, Any] = {}
    loaded(api, account, states)

    second = loaded(api, account, states)
    assert second.ids() == []
    assert second.stats.unchanged == 2 + sum(1 for i in app.team.invoices.values() if i.updated_at == mark)

    # A change committed late: its timestamp is below the mark but differs from the one loaded.
    app.update_invoice(late, note="Committed while the previous run listed", updated_at=mark - dt.timedelta(seconds=50))
    third = loaded(api, account, states)
    assert third.ids() == [str(late)]
    assert third.rows("invoices")[0]["notes"] == "Committed while the previous run listed"
    assert states["default"]["invoices"]["last_value"] == mark.isoformat()  # the mark stays

    fourth = loaded(api, account, states)
    assert fourth.ids() == []


def test_updated_since_an_unmapped_record_holds_the_mark_below_itself_until_it_maps() -> None:
    app, transport, api, account = fohlio()
    mark = app.max_updated_at()
    broken = min(app.team.invoices)
    stamp = mark + dt.timedelta(hours=1)
    app.update_invoice(broken, status="on_hold", updated_at=stamp)
    states: dict[str, Any] = {}
    first = loaded(api, account, states)
    assert first.unmapped()[str(broken)]["reason"] == "status: 'on_hold' is not a documented Fohlio status"
    held = stamp - dt.timedelta(microseconds=1)
    assert states["default"]["invoices"]["last_value"] == held.isoformat()

    transport.events.clear()
    second = loaded(api, account, states)
    assert since(transport, "/client_invoices") == [[str(int((held - OVERLAP).timestamp()))]]
    assert second.ids() == [] and str(broken) in second.unmapped()  # listed again, tried again
    assert states["default"]["invoices"]["last_value"] == held.isoformat()

    app.update_invoice(broken, status="sent", updated_at=stamp)  # mapped now, at the same timestamp
    third = loaded(api, account, states)
    assert third.ids() == [str(broken)]
    assert third.unmapped()[str(broken)]["_tombstone"] is True
    assert states["default"]["invoices"]["last_value"] == stamp.isoformat()
    assert states["default"]["unmapped"]["invoice"] == {}


def test_updated_since_a_record_without_a_readable_timestamp_keeps_the_mark_where_it_was() -> None:
    app, _, api, account = fohlio()
    states: dict[str, Any] = {}
    loaded(api, account, states)
    before = dict(states["default"]["invoices"])

    broken = min(app.team.invoices)
    app.update_invoice(broken, status="on_hold", updated_at=app.max_updated_at() + dt.timedelta(hours=1))
    original = app.render_invoice

    def unreadable(invoice: Any, *, single: bool) -> dict[str, Any]:
        body = original(invoice, single=single)
        return {**body, "updated_at": "last Tuesday"} if body["id"] == broken else body

    app.render_invoice = unreadable
    second = loaded(api, account, states)
    assert str(broken) in second.unmapped()
    assert states["default"]["invoices"] == before


# --- ListedSince: Fohlio contacts -------------------------------------------------------------


def test_listed_since_asks_from_the_start_of_the_previous_listing_minus_the_overlap() -> None:
    app, transport, api, account = fohlio()
    states: dict[str, Any] = {}
    first = loaded(api, account, states)
    started = int(first.listed.at.timestamp())
    assert states["default"]["contacts_listed_at"] == started
    clients = [c for c in app.team.contacts.values() if c.category_type == "client"]
    assert sorted(first.ids("clients", "client_id")) == sorted(str(c.id) for c in clients)

    transport.events.clear()
    second = loaded(api, account, states)
    assert since(transport, "/contacts") == [[str(started - 600)]]
    assert second.rows("clients") == []  # nothing changed since
    assert states["default"]["contacts_listed_at"] == int(second.listed.at.timestamp())

    app.update_client(clients[2].id, name="Harbor Hotels Renamed")
    third = loaded(api, account, states)
    assert [(row["client_id"], row["name"]) for row in third.rows("clients")] == [
        (str(clients[2].id), "Harbor Hotels Renamed")
    ]


# --- FullListing: InvoiceXpress ---------------------------------------------------------------


def test_full_listing_writes_everything_every_run_and_keeps_no_cursor() -> None:
    app = invoicexpress_app(clients=4, invoices_per_client=5, requests_per_minute=None)
    api, account = account_of(INVOICEXPRESS, app)
    states: dict[str, Any] = {}
    expected = sorted(str(i["id"]) for i in app.all_invoices())
    first = run(api, account, states)
    second = run(api, account, states)
    for ran in (first, second):
        assert sorted(ran.ids()) == expected
        assert len(ran.rows("clients")) == 4 + 1  # and the published example's client
        assert ran.stats.unchanged == 0
    # no mark, no sweep of a full listing: only what every account keeps (unmapped rows, the
    # fields its documents were last seen with)
    assert set(states["sandbox"]) == {"unmapped", STRUCTURE}
    assert SWEPT_PENDING not in states["sandbox"]
