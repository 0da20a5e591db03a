"""Per-client listings committed in batches (sources/shared/sweep.py), at the driver's seam.

`BATCH_END` comes after every `batch_clients` clients, with the account's state describing exactly
those clients; a run stopped after a batch is resumed by the next one, which lists documents only
for the clients not done; an update cursor moves only once the whole sweep is done; a client whose
documents cannot be listed stays open, is never taken as deleted, and is the only one read next.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from sandbox.flowpayroll import create_app as flowpayroll_app
from sandbox.invoicexpress import create_app as invoicexpress_app
from sources.flowpayroll import PROVIDER as FLOWPAYROLL
from sources.invoicexpress import PROVIDER as INVOICEXPRESS
from sources.shared.driver import DictStates, account_batches
from sources.shared.errors import HttpStatusError
from sources.shared.stats import current
from sources.shared.sweep import BATCH_END, deletions_marked
from tests.shared.driving import Batch, Recording, account_of, run, stop

LABEL = "sandbox"
DOCUMENTS = "/clients/{}/invoices.json"


def invoicexpress(batch: int | None, clients: int = 7, **given: Any) -> tuple[Any, Recording, Any, Any]:
    app = invoicexpress_app(clients=clients, invoices_per_client=3, requests_per_minute=None)
    transport = Recording(app.transport())
    api, account = account_of(INVOICEXPRESS, app, transport, per_page=2, **given)
    return app, transport, api, dataclasses.replace(account, batch_clients=batch, concurrency=2)


def client_ids(app: Any) -> list[str]:
    """The clients in the order the API lists them."""
    listed = [str(app.account.client_id(i)) for i in app.account.listed()]
    return listed + [str(c["id"]) for c in app.fixture_clients]


def documents_of(app: Any, client_id: str) -> list[str]:
    return sorted(str(i["id"]) for i in app.all_invoices() if str(i["client"]["id"]) == client_id)


def listed_documents(transport: Recording) -> list[str]:
    """The clients whose documents were asked for (two in flight at once: in no fixed order), sorted."""
    return sorted({s.path.split("/")[2] for s in transport.sent() if s.path.endswith("/invoices.json")})


def test_a_batch_ends_after_every_n_clients_with_the_state_of_those_clients() -> None:
    app, _, api, account = invoicexpress(batch=3)
    clients = client_ids(app)  # 7 generated and the published example's: 8
    states: dict[str, Any] = {}
    batches: list[Batch] = [Batch()]
    committed: list[dict[str, Any]] = []
    for item in account_batches(api, account, DictStates(states)):
        if item is BATCH_END:
            committed.append(copy.deepcopy(states[LABEL]))
            batches.append(Batch())
        else:
            batches[-1].add(item)

    assert len(batches) == 3  # 3 + 3 + 2 clients: no batch end after the last one
    done: list[str] = []
    for batch, state in zip(batches, committed, strict=False):
        written = {row["client_id"] for row in batch.rows("invoices")}
        new = state["sweep"]["done"][len(done) :]
        assert len(new) == 3 and written == set(new)
        assert sorted(row["invoice_id"] for row in batch.rows("invoices")) == sorted(
            i for c in new for i in documents_of(app, c)
        )
        done += new
        assert state["sweep"]["stable"] is True
    assert len(done) == len(set(done)) == 6 and set(done) < set(clients)
    assert {row["client_id"] for row in batches[-1].rows("invoices")} == set(clients) - set(done)
    # Every client row went out with the first batch, before any document.
    assert sorted(r["client_id"] for r in batches[0].rows("clients")) == sorted(clients)
    assert [b.rows("clients") for b in batches[1:]] == [[], []]
    assert "sweep" not in states[LABEL]  # done: the next run starts a new sweep


def test_a_run_stopped_after_a_batch_is_resumed_for_the_clients_not_done_and_those_not_marked() -> None:
    """Stopped after two committed batches, before the run's deletions were marked: the next run
    lists the clients not done, and lists again those whose deletions were not marked (their
    listings are what shows a deletion); a run that marked them lists only the clients not done."""
    app, transport, api, account = invoicexpress(batch=3)
    clients = client_ids(app)
    states: dict[str, Any] = {}
    stream = account_batches(api, account, DictStates(states))
    ends = 0
    for item in stream:
        if item is BATCH_END:
            ends += 1
            if ends == 2:
                committed = copy.deepcopy(states)
                break
    next(stream)  # some of the third batch is read, never committed
    stop(stream)
    done = committed[LABEL]["sweep"]["done"]
    assert len(done) == 6

    assert committed[LABEL]["sweep"]["unmarked"] == done
    marked = copy.deepcopy(committed)
    transport.events.clear()
    again = run(api, account, committed)
    assert listed_documents(transport) == sorted(clients)  # the unmarked listed again, their deletions shown
    assert set(again.listed.scopes["invoices"]) == set(clients)

    assert deletions_marked(marked[LABEL], set(done))  # what a run that marked them leaves
    transport.events.clear()
    resumed = run(api, account, marked)
    rest = [c for c in clients if c not in done]
    assert listed_documents(transport) == sorted(rest)
    assert sorted(resumed.ids()) == sorted(i for c in rest for i in documents_of(app, c))
    assert transport.sent("/clients.json")  # the clients are listed again to know who is left
    assert "sweep" not in marked[LABEL]
    # A resumed sweep did not list the clients done earlier: no scope of it is the whole account.
    assert set(resumed.listed.scopes["invoices"]) == set(rest)


def test_a_sweep_under_another_document_filter_starts_over() -> None:
    app, transport, api, account = invoicexpress(batch=3)
    states: dict[str, Any] = {}
    stream = account_batches(api, account, DictStates(states))
    for item in stream:
        if item is BATCH_END:
            committed = copy.deepcopy(states)
            break
    stop(stream)

    narrowed_api, _ = account_of(INVOICEXPRESS, app, transport, per_page=2, statuses=["final"])
    transport.events.clear()
    run(narrowed_api, account, committed)
    assert listed_documents(transport) == sorted(client_ids(app))


def flowpayroll(batch: int) -> tuple[Any, Recording, Any, Any]:
    app = flowpayroll_app()
    transport = Recording(app.transport())
    api, account = account_of(FLOWPAYROLL, app, transport)
    return app, transport, api, dataclasses.replace(account, batch_clients=batch, concurrency=1)


def test_the_update_cursor_moves_only_once_the_sweep_is_complete() -> None:
    app, _, api, account = flowpayroll(batch=2)
    label = app.organisation_id
    states: dict[str, Any] = {}
    stream = account_batches(api, account, DictStates(states))
    for item in stream:
        if item is BATCH_END:
            committed = copy.deepcopy(states)
            break
    stop(stream)
    sweep = committed[label]["sweep"]
    assert "updated_at" not in committed[label]  # one mark for the account: not after a batch
    first_clients = sweep["done"]
    seen = [i for c in first_clients for i in app.invoices_of(c)]
    newest = max(seen, key=lambda i: i["updatedDate"])
    assert sweep["mark"]["last_value"] == newest["updatedDate"].isoformat()

    ends = 0
    states = copy.deepcopy(committed)
    for item in account_batches(api, account, DictStates(states)):
        if item is BATCH_END:
            ends += 1
            assert "updated_at" not in states[label]
    assert ends >= 1
    # Complete: the mark the sweep's first run saw (docs in sources/shared/sweep.py), not later ones.
    assert states[label]["updated_at"] == sweep["mark"]
    assert "sweep" not in states[label]

    app.update_invoice(seen[0]["id"], reference="Changed")
    again = run(api, account, states)
    assert seen[0]["id"] in again.ids()


@pytest.mark.usefixtures("quick_retries")
def test_a_client_whose_documents_fail_stays_open_is_not_taken_as_deleted_and_is_read_alone_next() -> None:
    app, transport, api, account = invoicexpress(batch=3)
    clients = client_ids(app)
    failing = clients[4]
    fault = app.inject("status", DOCUMENTS.format(failing), status=500, times=None)
    states: dict[str, Any] = {}
    first = run(api, account, states)

    assert failing not in {row["client_id"] for row in first.rows("invoices")}
    assert sorted(first.ids()) == sorted(i for c in clients if c != failing for i in documents_of(app, c))
    assert fault.seen == 2  # tried, retried once, given up on
    reason = "documents not listed (HTTP 500 after retries); read again next run"
    assert first.stats.skipped[reason] == 1 and first.stats.skipped_examples[reason] == [failing]
    assert set(first.listed.unlisted) == {failing}
    assert first.listed.scopes["invoices"] == set(clients) - {failing}
    assert not first.listed.covers("invoices", failing)
    assert all(first.listed.covers("invoices", c) for c in clients if c != failing)
    assert sorted(states[LABEL]["sweep"]["done"]) == sorted(set(clients) - {failing})
    deletions_marked(
        states[LABEL], {c for c in first.listed.scopes["invoices"] if c is not None}
    )  # as the run does once loaded

    app.faults.remove(fault)
    transport.events.clear()
    second = run(api, account, states)
    assert listed_documents(transport) == [failing]
    assert sorted(second.ids()) == documents_of(app, failing)
    assert second.listed.unlisted == {}
    assert "sweep" not in states[LABEL]


@pytest.mark.usefixtures("quick_retries")
def test_a_client_that_fails_without_batches_is_skipped_and_every_client_is_read_next_run() -> None:
    app, transport, api, account = invoicexpress(batch=None)
    clients = client_ids(app)
    fault = app.inject("status", DOCUMENTS.format(clients[0]), status=502, times=None)
    states: dict[str, Any] = {}
    first = run(api, account, states)
    assert set(first.listed.unlisted) == {clients[0]}
    assert "sweep" not in states[LABEL]

    app.faults.remove(fault)
    transport.events.clear()
    run(api, account, states)
    assert listed_documents(transport) == sorted(clients)


@pytest.mark.usefixtures("quick_retries")
def test_when_no_client_can_be_listed_the_run_fails_instead_of_skipping_them_all() -> None:
    app, _, api, account = invoicexpress(batch=3, clients=2)
    app.inject("status", "/clients/{client_id}/invoices.json", status=503, times=None)
    states: dict[str, Any] = {}
    with pytest.raises(HttpStatusError) as failed:
        run(api, account, states)
    assert failed.value.status == 503
    stats = current("invoicexpress")
    assert stats is not None and len(stats.listed.unlisted if stats.listed else {}) == 3


@pytest.mark.usefixtures("quick_retries")
def test_a_client_that_keeps_failing_is_skipped_again_and_does_not_fail_the_account() -> None:
    app, _, api, account = invoicexpress(batch=3)
    clients = client_ids(app)
    app.inject("status", DOCUMENTS.format(clients[2]), status=500, times=None)
    states: dict[str, Any] = {}
    run(api, account, states)  # every other client done, the sweep left open for this one

    again = run(api, account, states)  # the same client fails again: skipped again, as without batches
    reason = "documents not listed (HTTP 500 after retries); read again next run"
    assert again.stats.skipped_examples[reason] == [clients[2]]
