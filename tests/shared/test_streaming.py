"""Pages are mapped and written as they arrive: with a small `TableWriter.batch_rows`, the rows of a
page are yielded before the next page is asked for, and what the driver holds while a listing
streams by is a page or two, never the listing.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import tracemalloc
from typing import Any

import httpx
import pytest

from sandbox.invoicexpress import create_app as invoicexpress_app
from sandbox.kitchen import create_app as kitchen_app
from sources.invoicexpress import PROVIDER as INVOICEXPRESS
from sources.kitchen import PROVIDER as KITCHEN
from sources.shared import driver
from sources.shared.driver import DictStates, account_batches
from sources.shared.errors import HttpStatusError
from sources.shared.model import TableWriter
from tests.example_provider.example import PROVIDER as EXAMPLE
from tests.example_provider.fake_api import ExampleBooks
from tests.shared.driving import Recording, Sent, account_of, table_name


@pytest.fixture
def batch_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run's writer hands a table to dlt as soon as it holds one row."""
    monkeypatch.setattr(driver, "TableWriter", functools.partial(TableWriter, batch_rows=1))


def consume(stream: Any, events: list[Any]) -> None:
    """Consume a run item by item, noting each table received in `events` beside the requests."""
    for item in stream:
        if item is not driver.BATCH_END:
            events.append((table_name(item), item.data))


def invoice_tables(events: list[Any], start: int, stop: int) -> list[str]:
    """The ids of the invoices yielded between two events."""
    return [i for e in events[start:stop] if isinstance(e, tuple) and e[0] == "invoices" for i in ids(e[1])]


def ids(table: Any) -> list[str]:
    return [str(i) for i in table.column("invoice_id").to_pylist()]


@pytest.mark.usefixtures("batch_rows")
def test_each_page_of_an_account_listing_is_yielded_before_the_next_page_is_asked_for() -> None:
    app = kitchen_app(invoices=40)
    transport = Recording(app.transport())
    pages: list[list[str]] = []
    transport.after = lambda request, response: (
        pages.append([str(r["id"]) for r in json.loads(response.read())["data"]])
        if request.url.path == "/api/invoices"
        else None
    )
    api, account = account_of(KITCHEN, app, transport, per_page=10)
    consume(account_batches(api, account, DictStates({})), transport.events)

    asked = [n for n, e in enumerate(transport.events) if isinstance(e, Sent) and e.path == "/api/invoices"]
    assert len(asked) == len(pages) == 5
    for page, (start, stop) in enumerate(zip(asked, [*asked[1:], len(transport.events)], strict=True)):
        assert invoice_tables(transport.events, start, stop) == pages[page], page


@pytest.mark.usefixtures("batch_rows")
def test_a_client_s_documents_are_yielded_before_the_next_clients_are_asked_for() -> None:
    app = invoicexpress_app(clients=6, invoices_per_client=2, requests_per_minute=None)
    transport = Recording(app.transport())
    api, account = account_of(INVOICEXPRESS, app, transport, per_page=10)
    consume(account_batches(api, dataclasses.replace(account, concurrency=1), DictStates({})), transport.events)

    first_rows = next(n for n, e in enumerate(transport.events) if isinstance(e, tuple) and e[0] == "invoices")
    documents = [n for n, e in enumerate(transport.events) if isinstance(e, Sent) and e.path.endswith("/invoices.json")]
    assert len(documents) == 7
    # One listing in flight and one queued (bounded_map keeps two per worker): no more before writing.
    assert sum(1 for n in documents if n < first_rows) <= 2


@pytest.mark.usefixtures("batch_rows")
def test_the_pages_of_one_client_are_yielded_as_they_arrive() -> None:
    app = invoicexpress_app(clients=1, invoices_per_client=12, requests_per_minute=None, fixtures=False)
    transport = Recording(app.transport())
    api, account = account_of(INVOICEXPRESS, app, transport, per_page=2)
    consume(account_batches(api, dataclasses.replace(account, concurrency=1), DictStates({})), transport.events)

    pages = [n for n, e in enumerate(transport.events) if isinstance(e, Sent) and e.path.endswith("/invoices.json")]
    first_rows = next(n for n, e in enumerate(transport.events) if isinstance(e, tuple) and e[0] == "invoices")
    assert len(pages) == 6
    assert first_rows < pages[-1]


def large_listing(pages: int, memo: int) -> ExampleBooks:
    """Example Books with `pages` invoices of about `memo` bytes each (one invoice a page)."""
    app = ExampleBooks()
    template = app.invoices[0]
    app.invoices = [{**template, "id": f"i{n}", "number": f"EX-{n:05d}", "memo": "m" * memo} for n in range(pages)]
    return app


@pytest.mark.usefixtures("batch_rows")
def test_the_memory_a_run_holds_is_a_page_or_two_not_the_listing() -> None:
    pages, memo = 40, 750_000  # a 30 MB listing, one invoice a page
    app = large_listing(pages, memo)
    api, account = account_of(EXAMPLE, app, per_page=1)
    list(account_batches(*account_of(EXAMPLE, large_listing(2, 10), per_page=1), DictStates({})))  # warm-up

    held: list[int] = []  # what is still reachable (garbage collected) as the pages stream by
    written = 0
    gc.collect()
    gc.disable()  # young garbage (httpx's response cycles) is collected below, at each check
    tracemalloc.start()
    try:
        for item in account_batches(api, account, DictStates({})):
            if table_name(item) == "invoices":
                assert item.data.num_rows == 1  # one page at a time
                written += 1
                del item
                if written % 10 == 0:
                    gc.collect(1)
                    held.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
        gc.enable()
    assert written == pages and len(held) == 4
    assert max(held) < 3 * memo * 2, f"{max(held) / 1e6:.1f} MB held for a {pages * memo / 1e6:.0f} MB listing"
    assert held[-1] - held[0] < memo  # flat: thirty pages later, not one page more


@pytest.mark.usefixtures("batch_rows")
def test_a_page_that_fails_after_earlier_pages_were_yielded_stops_the_stream_with_what_to_check() -> None:
    app = kitchen_app(invoices=30)
    inner = app.transport()
    asked: list[str] = []

    def refused_third_page(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/invoices":
            asked.append(request.url.params["page"])
            if request.url.params["page"] == "3":
                return httpx.Response(422, json={"message": "The page is invalid.", "errors": {"page": ["invalid"]}})
        return inner.handle_request(request)

    api, account = account_of(KITCHEN, app, httpx.MockTransport(refused_third_page), per_page=10)
    received: list[str] = []
    with pytest.raises(HttpStatusError) as failed:
        for item in account_batches(api, account, DictStates({})):
            if table_name(item) == "invoices":
                received.extend(ids(item.data))
    assert len(received) == 20  # pages 1 and 2 went out before page 3 was asked for
    assert asked == ["1", "2", "3"]  # a refused request is not retried
    assert failed.value.status == 422
    assert "check state (all, active, archived) and per_page in [sources.kitchen]" in str(failed.value)
