"""The vectorised page mapper (`sources/invoicexpress/page.py`) gives exactly the rows of the
record mapper (`mapping.map_invoice`, the reference), row for row and column for column: on
every page the sandbox serves (its untidy generated documents and the published samples), on
pages made untidier still, and on what it must leave to the record mapper."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import httpx
import pyarrow as pa
import pytest

from sandbox import invoicexpress
from sources.invoicexpress import page
from sources.invoicexpress.api import API
from sources.shared.declaration import Api, Context
from sources.shared.model import INVOICES
from sources.shared.stats import RunStats
from sources.shared.values import loads
from tests import pages as shared
from tests.pages import UNTIDY_AMOUNTS

RECORD_BY_RECORD = shared.record_by_record(API)
CONTEXT = Context(API.provider, "acme")


def sandbox_pages(app: invoicexpress.InvoiceXpressSandbox) -> list[list[Any]]:
    """Every page of every client's documents, decoded as the source decodes them."""
    pages: list[list[Any]] = []
    with httpx.Client(transport=app.transport(), base_url="http://sandbox") as client:
        key = {"api_key": app.api_key}
        clients: list[Any] = []
        number = 1
        while True:
            body = loads(client.get("/clients.json", params={**key, "page": number, "per_page": 50}).content)
            clients += body["clients"]
            if number >= body["pagination"]["total_pages"]:
                break
            number += 1
        for found in clients:
            number = 1
            while True:
                response = client.post(
                    f"/clients/{found['id']}/invoices.json",
                    params={**key, "page": number, "per_page": 30},
                    json={"filter": {"archived": ["archived", "non_archived"]}},
                )
                body = loads(response.content)
                pages.append(body["invoices"])
                if number >= body["pagination"]["total_pages"]:
                    break
                number += 1
    return pages


def through(api: Api, pages: list[list[Any]], first_load: bool = False) -> tuple[dict[str, Any], RunStats, Any]:
    return shared.through(api, [(p, CONTEXT) for p in pages], first_load)


def assert_same(pages: list[list[Any]], first_load: bool = False) -> dict[str, Any]:
    return shared.assert_same(API, [(p, CONTEXT) for p in pages], first_load)


@pytest.fixture(scope="module")
def pages() -> list[list[Any]]:
    return sandbox_pages(invoicexpress.create_app(clients=25))


def test_every_sandbox_page_gives_the_record_mappers_rows(pages) -> None:
    got = assert_same(pages)
    assert len(got[INVOICES]) > 200
    # The published samples are among them.
    samples = {str(i) for i in invoicexpress.create_app(clients=1).fixtures}
    assert samples and samples <= {r["invoice_id"] for r in got[INVOICES]}
    # The fast path maps almost every generated page itself.
    handled = [page.map_invoice_page(p, CONTEXT) for p in pages if p]
    assert all(rows is not None for rows in handled)
    left = sum(len(rows.fallback) for rows in handled if rows is not None)
    assert left < 0.05 * sum(len(p) for p in pages), left


def test_an_appending_extract_gives_the_same_rows_on_both_paths(pages) -> None:
    assert_same(pages, first_load=True)


def _untidy(base: dict[str, Any]) -> list[dict[str, Any]]:
    """One document made untidy in each of the ways the record mapper reads or refuses."""
    changes: list[dict[str, Any]] = [
        {"total": "12.30", "before_taxes": "10.00", "taxes": "2.30"},  # money as text: read exactly
        {"total": None},  # required: refused
        {"taxes": None},
        {"status": "weird"},  # unknown status: refused
        {"status": " Final "},  # spaced and capitalised: read
        {"status": None},
        {"currency": "Martian credit"},  # a currency it cannot resolve: refused
        {"currency": "€"},
        {"currency": "usd"},
        {"archived": 1},
        {"archived": "0"},
        {"archived": "maybe"},
        {"date": "31/02/2024"},
        {"date": "2024-01-02"},
        {"due_date": ""},
        {"discount": ""},
        {"discount": "1.5"},
        {"sequence_number": "rascunho"},
        {"sequence_number": 42},
        {"id": None},
        {"id": 7},
        {"type": ""},
        {"type": "VatMossInvoice"},
        # Equal in Python, not to the record mapper: on one page, each read as itself.
        {"type": True},
        {"type": 1},
        {"type": Decimal("1.0")},
        {"client": None},
        {"client": {}},
        {"reference": True},
        {"observations": Decimal("1.5")},
        {"total": Decimal("1.1234567")},  # seven decimals: refused, never rounded
        {"total": 10**20},  # far past DECIMAL(18, 6)
        # Arrow reads an extreme exponent as 0, and refuses 1 written with 100 zeros: neither here.
        {"discount": Decimal("1E-600000")},
        {"discount": Decimal("1." + "0" * 100)},
        {"items": []},
        {"items": None},
        *({key: value} for key in ("total", "before_taxes", "taxes", "discount") for value in UNTIDY_AMOUNTS),
    ]
    line_changes: list[dict[str, Any]] = [
        {"quantity": "1 000.5"},
        {"quantity": "1e3"},
        {"quantity": "abc"},
        {"quantity": ""},
        {"unit_price": "0.1234567"},
        {"tax": {"value": "23.0"}},
        {"tax": None},
        {"tax": "23"},
        {"discount_amount": None},
        {"discount_amount": "0"},
        {"subtotal": Decimal("123456789012.123456")},
        {"subtotal": Decimal("1234567890123")},
        {"name": 5},
        {"unit": None},
        *({key: value} for key in ("quantity", "unit_price", "tax_amount", "total") for value in UNTIDY_AMOUNTS),
        *({"tax": {"value": value}} for value in UNTIDY_AMOUNTS),
    ]
    documents = []
    for n, change in enumerate(changes):
        documents.append({**copy.deepcopy(base), **change, "id": change.get("id", 9_000_000 + n)})
    for n, change in enumerate(line_changes):
        document = copy.deepcopy(base)
        document["id"] = 9_100_000 + n
        document["items"] = [{**item, **change} for item in document["items"] or [{"name": "x"}]]
        documents.append(document)
    return documents


def test_untidy_documents_give_the_record_mappers_rows_or_the_same_refusals(pages) -> None:
    base = next(r for p in pages for r in p if r.get("items"))
    documents = _untidy(base)
    # Each on a page of its own (a page Arrow refuses falls back whole), then all on one page.
    assert_same([[d] for d in documents])
    assert_same([documents])


def test_what_the_columns_do_not_take_exactly_is_left_to_the_record_mapper(pages) -> None:
    base = next(r for p in pages for r in p if r.get("items"))
    plain = copy.deepcopy(base)
    as_text = {**copy.deepcopy(base), "id": 1, "total": "1 000.50"}  # read by the record mapper only
    unknown = {**copy.deepcopy(base), "id": 2, "currency": "Martian credit"}
    rows = page.map_invoice_page([plain, as_text, unknown, "not an object"], CONTEXT)
    assert rows is not None
    assert list(rows.fallback) == [1, 2, 3]
    assert rows.invoices.num_rows == 1
    # An amount past DECIMAL(18, 6) is left to the record mapper, the rest of the page is mapped.
    huge = {**copy.deepcopy(base), "id": 3, "total": Decimal("9999999999999.5")}
    seven = {**copy.deepcopy(base), "id": 4, "before_taxes": Decimal("1.0000001")}
    tiny = {**copy.deepcopy(base), "id": 5, "discount": Decimal("1E-600000")}
    rows = page.map_invoice_page([plain, huge, seven, tiny], CONTEXT)
    assert rows is not None and list(rows.fallback) == [1, 2, 3]
    # A derived amount past DECIMAL(18, 6) (withholding = before_taxes + taxes - total): Arrow
    # refuses it, the whole page goes record by record.
    vast = {**copy.deepcopy(base), "id": 6, "total": 1, "before_taxes": 10**12 - 1, "taxes": 10**12 - 1}
    assert page.map_invoice_page([plain, vast], CONTEXT) is None
    assert_same([[plain, vast]])
    # And that page still loads exactly what the record mapper gives: the good record, and the
    # other refused with the record mapper's reason.
    got = assert_same([[plain, huge]])
    assert [r["invoice_id"] for r in got[INVOICES]] == [str(plain["id"])]


def test_money_stays_exact_on_the_vectorised_path(pages) -> None:
    base = next(r for p in pages for r in p if r.get("items"))
    exact = {**copy.deepcopy(base), "total": Decimal("123456789012.000001"), "before_taxes": Decimal("0.000001")}
    exact["taxes"] = Decimal("123456789012.000000")
    rows = page.map_invoice_page([exact], CONTEXT)
    assert rows is not None and not rows.fallback
    assert rows.invoices.column("total").type == pa.decimal128(18, 6)
    assert rows.invoices.column("total").to_pylist() == [Decimal("123456789012.000001")]
    assert rows.invoices.column("withholding_total").to_pylist() == [Decimal(0)]


def test_remap_gets_each_record_s_rows_as_the_record_mapper_writes_them(pages) -> None:
    """What remap's writer receives, each record with its rows, is the record mapper's."""

    records = [*pages[0], *_untidy(next(r for p in pages for r in p if r.get("items")))]
    assert shared.assert_remap_gets_each_record_s_rows(RECORD_BY_RECORD, API, records, CONTEXT) > 10


def test_an_amount_the_mapping_derives_past_decimal_18_6_is_reported_not_written(pages) -> None:
    """Each figure fits, their sum does not: withholding = before_taxes + taxes − total
    (docs/canonical-model.md). Written, it would fail the whole batch's Arrow conversion; it is
    reported and kept like any record that cannot be mapped, on both paths, and the rest lands."""
    base = next(r for p in pages for r in p if r.get("items"))
    plain = {**copy.deepcopy(base), "id": 1}
    huge = {
        **copy.deepcopy(base),
        "id": 2,
        "before_taxes": Decimal("999999999999.5"),
        "taxes": Decimal("999999999999.5"),
        "total": Decimal("0.5"),
        "retention": None,
    }
    for api in (API, RECORD_BY_RECORD):
        got, stats, records = through(api, [[plain, huge]])
        assert [row["invoice_id"] for row in got[INVOICES]] == ["1"]
        assert stats.invoices == 1
        (reason,) = [reason for reason, _ in records.failed.values()]
        assert "does not fit DECIMAL(18, 6)" in reason, reason
    assert_same([[plain, huge]])


def test_a_record_that_is_not_an_object_is_reported_and_kept_on_both_paths(pages) -> None:
    good = [r for p in pages for r in p if r.get("items")][:3]
    shared.assert_not_objects_are_reported(API, good, CONTEXT)
