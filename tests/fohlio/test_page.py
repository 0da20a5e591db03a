"""The vectorised page mapper (`sources/fohlio/page.py`) gives exactly the rows of the record
mapper (`mapping.map_invoice` with `mapping.resolve_currency`, the reference), row for row and
column for column: on every page the sandbox serves (generated invoices and the published
sample), on pages made untidier still, under each context the driver may give (project
currencies, a fallback currency or none, a fallback that is not a currency), and on what it must
leave to the record mapper."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import httpx
import pyarrow as pa
import pytest

from sandbox import fohlio
from sources.fohlio import mapping, page
from sources.fohlio.api import API
from sources.shared.declaration import Api, Context
from sources.shared.model import INVOICES
from sources.shared.stats import RunStats
from sources.shared.values import loads
from tests import pages as shared
from tests.pages import UNTIDY_AMOUNTS

RECORD_BY_RECORD = shared.record_by_record(API)


def sandbox_pages(app: fohlio.FohlioSandbox, per_page: int) -> tuple[list[list[Any]], dict[str, str]]:
    """Every page of the invoice listing, decoded as the source decodes them, and the team's
    project currencies as the `projects` lookup reads them."""
    pages: list[list[Any]] = []
    with httpx.Client(
        transport=app.transport(), base_url="http://sandbox", headers={"authorization": app.api_key}
    ) as client:
        number = 1
        while True:
            found = loads(client.get("/client_invoices", params={"page": number, "per_page": per_page}).content)
            pages.append(found)
            if len(found) < per_page:
                break
            number += 1
        projects = mapping.project_currencies(loads(client.get("/team").content))
    return pages, projects


def context(projects: dict[str, str], options: dict[str, Any]) -> Context:
    return Context(API.provider, "acme", options=options, lookup=lambda name: projects if name == "projects" else None)


def through(
    api: Api, pages: list[list[Any]], ctx: Context, first_load: bool = False
) -> tuple[dict[str, Any], RunStats, Any]:
    return shared.through(api, [(p, ctx) for p in pages], first_load)


def assert_same(pages: list[list[Any]], ctx: Context, first_load: bool = False) -> dict[str, Any]:
    return shared.assert_same(API, [(p, ctx) for p in pages], first_load)


@pytest.fixture(scope="module")
def sandbox() -> tuple[list[list[Any]], dict[str, str]]:
    return sandbox_pages(fohlio.create_app(fixtures=True, invoices=150), per_page=25)


@pytest.fixture(scope="module")
def base(sandbox) -> dict[str, Any]:
    pages, _ = sandbox
    return next(r for p in pages for r in p if len(r.get("items") or []) > 1 and r.get("payment_terms"))


CONTEXTS = {
    "projects and a fallback": lambda projects: context(projects, {"currency": "USD"}),
    "projects, no fallback": lambda projects: context(projects, {}),
    "no project currencies": lambda projects: context({}, {"currency": "eur"}),
    "a fallback that is no currency": lambda projects: context(projects, {"currency": "Martian credit"}),
    "a blank fallback": lambda projects: context({}, {"currency": "  "}),
}


@pytest.mark.parametrize("which", CONTEXTS)
def test_every_sandbox_page_gives_the_record_mappers_rows(sandbox, which) -> None:
    pages, projects = sandbox
    ctx = CONTEXTS[which](projects)
    got = assert_same(pages, ctx)
    assert assert_same(pages, ctx, first_load=True) == got
    if which == "projects and a fallback":
        assert len(got[INVOICES]) == sum(len(p) for p in pages) > 150
        # The published sample is among them.
        assert "123" in {r["invoice_id"] for r in got[INVOICES]}
        # The fast path maps every page itself.
        handled = [page.map_invoice_page(p, ctx) for p in pages if p]
        assert all(rows is not None and not rows.fallback for rows in handled)


@pytest.mark.parametrize(("seed", "invoices", "per_page"), [(1, 40, 7), (7, 230, 100), (2026, 90, 1)])
def test_other_seeds_and_sizes_give_the_record_mappers_rows(seed, invoices, per_page) -> None:
    pages, projects = sandbox_pages(
        fohlio.create_app(seed=seed, invoices=invoices, clients=13, projects=11, fixtures=False), per_page
    )
    assert sum(len(p) for p in pages) == invoices
    for make in CONTEXTS.values():
        assert_same(pages, make(projects))


def _untidy(base: dict[str, Any], projects: dict[str, str]) -> list[dict[str, Any]]:
    """One invoice made untidy in each of the ways the record mapper reads or refuses."""
    some_project = next(iter(projects))
    changes: list[dict[str, Any]] = [
        {"amount": "12.30", "tax_amount": "2.30", "amount_with_tax": " 14.60 "},  # money as text: read exactly
        {"amount": "1 000.50"},  # read by the record mapper only
        {"amount": "1e3"},
        {"amount": "abc"},
        {"amount": ""},  # required: refused
        {"amount": None},
        {"tax_amount": None},
        {"amount_with_tax": True},
        {"amount": Decimal("1.123")},
        {"amount": Decimal("1.12345")},
        {"amount": Decimal("1.123456")},
        {"amount": Decimal("1.1234567")},  # seven decimals: refused, never rounded
        {"amount": Decimal("1.5000000")},  # seven decimals that are zeros: the same number
        {"amount": 10**20},  # far past DECIMAL(18, 6)
        {"amount": Decimal("999999999999.999999")},
        {"amount": Decimal("NaN")},
        {"amount": 1.5},  # a float: a decoding bug, refused
        {"balance": None},
        {"balance": ""},
        {"balance": "7.5"},
        {"balance": "seven"},
        {"balance": Decimal("0.0000001")},
        {"status": "weird"},  # undocumented status: refused
        {"status": "Paid"},
        {"status": None},
        {"status": 1},
        {"status": "revised"},
        {"status": "draft"},
        {"id": None},
        {"id": ""},
        {"id": "inv-7"},
        {"id": True},
        {"id": Decimal("7.0")},
        {"label": ""},
        {"label": None},
        {"label": 42},
        {"label": True},
        {"note": Decimal("1.5")},
        {"note": ""},
        {"invoice_date": None},
        {"invoice_date": ""},
        {"invoice_date": "2024-02-30"},
        {"invoice_date": "2024-07-12T23:30:00-05:00"},
        {"invoice_date": "12/07/2024"},
        {"invoice_date": 20240712},
        {"created_at": "yesterday"},
        {"created_at": None},
        {"updated_at": "2024-07-12"},
        {"updated_at": "2024-07-12T10:00:00+02:00"},
        {"payment_terms": []},
        {"payment_terms": None},
        {"payment_terms": "soon"},
        {"payment_terms": [{"due_date": "2024-09-01"}, {"due_date": "2024-08-01"}, {"due_date": None}]},
        {"payment_terms": [{"due_date": "31/08/2024"}]},
        {"payment_terms": ["2024-08-01"]},
        {"client": None},
        {"client": {}},
        {"client": []},
        {"client": {"id": True, "name": 5}},
        {"client": {"id": 5, "name": ["x"]}},
        {"client": {"id": 5, "data": {"currency": "eur"}}},
        {"client": {"id": 5, "data": {"currency": "Martian credit"}}},
        {"client": {"id": 5, "data": {"currency": {"iso_code": "GBP"}}}},
        {"client": {"id": 5, "data": {"currency": ""}}},
        {"client": {"id": 5, "data": {"currency": 978}}},
        {"client": {"id": 5, "data": []}},
        {"project_id": some_project},
        {"project_id": int(some_project)},
        {"project_id": None},
        {"project_id": "999999"},
        {"project_id": [1]},
        {"project_id": True},
        {"items": []},
        {"items": None},
        {"items": "none"},
        {"items": [1, 2]},
        {"big": 10**30},  # an integer orjson refuses: the other encoder writes the raw JSON
        *({key: value} for key in ("amount", "tax_amount", "amount_with_tax", "balance") for value in UNTIDY_AMOUNTS),
    ]
    line_changes: list[dict[str, Any]] = [
        {"quantity": "1 000.5"},
        {"quantity": "1e3"},
        {"quantity": "abc"},
        {"quantity": ""},
        {"quantity": None},
        {"quantity": Decimal("2.500")},
        {"quantity": Decimal("0.000001"), "price": Decimal("0.5")},  # a product past six decimals: refused
        {"quantity": Decimal("999999"), "price": Decimal("9999999")},  # a product past 12 digits: refused
        {"quantity": 3, "price": 4},
        {"price": "0.1234567"},
        {"price": True},
        {"price": 1.5},
        {"price": Decimal("123456789012.123456"), "quantity": 1},
        {"price": 10**13},
        {"id": None},
        {"id": True},
        {"name": 5},
        {"description": None},
        {"unit_type": Decimal("1")},
        {"big": 10**30},
        *({key: value} for key in ("quantity", "price") for value in UNTIDY_AMOUNTS),
    ]
    documents = []
    for n, change in enumerate(changes):
        documents.append({**copy.deepcopy(base), **change, "id": change.get("id", 9_000_000 + n)})
    for n, change in enumerate(line_changes):
        document = copy.deepcopy(base)
        document["id"] = 9_100_000 + n
        document["items"] = [{**item, **change} for item in document["items"]]
        documents.append(document)
    # Equal in Python, not to the record mapper: on one page, each read as itself.
    for n, value in enumerate((True, 1, Decimal("1.0"), "1")):
        documents.append({**copy.deepcopy(base), "id": 9_200_000 + n, "label": value})
    for n, value in enumerate((Decimal(some_project + ".0"), int(some_project), some_project, True, 1)):
        documents.append({**copy.deepcopy(base), "id": 9_300_000 + n, "project_id": value})
    return documents


@pytest.mark.parametrize("which", CONTEXTS)
def test_untidy_invoices_give_the_record_mappers_rows_or_the_same_refusals(sandbox, base, which) -> None:
    _, projects = sandbox
    ctx = CONTEXTS[which](projects)
    documents = _untidy(base, projects)
    # Each on a page of its own (a page Arrow refuses falls back whole), then all on one page.
    got = assert_same([[d] for d in documents], ctx)
    assert assert_same([documents], ctx) == got
    assert_same([documents], ctx, first_load=True)
    # Without the few values Arrow refuses, the whole page goes through the fast path, which
    # leaves only some of the records to the record mapper.
    taken = [d for d in documents if page.map_invoice_page([d], ctx) is not None]
    assert len(documents) - len(taken) <= 5
    rows = page.map_invoice_page(taken, ctx)
    assert rows is not None and len(taken) / 3 < rows.invoices.num_rows < len(taken)
    assert_same([taken], ctx)
    assert_same([taken], ctx, first_load=True)


def test_what_the_columns_do_not_take_exactly_is_left_to_the_record_mapper(sandbox, base) -> None:
    _, projects = sandbox
    ctx = CONTEXTS["projects and a fallback"](projects)
    plain = copy.deepcopy(base)
    as_text = {**copy.deepcopy(base), "id": 1, "amount": "1 000.50"}  # read by the record mapper only
    unknown = {**copy.deepcopy(base), "id": 2, "status": "weird"}
    no_currency = {**copy.deepcopy(base), "id": 3, "client": {"data": {"currency": "Martian credit"}}}
    rows = page.map_invoice_page([plain, as_text, unknown, no_currency, "not an object"], ctx)
    assert rows is not None
    assert list(rows.fallback) == [1, 2, 3, 4]
    assert rows.invoices.num_rows == 1
    # An amount past DECIMAL(18, 6) is left to the record mapper, the rest of the page is mapped.
    huge = {**copy.deepcopy(base), "id": 4, "amount_with_tax": Decimal("9999999999999.5")}
    seven = {**copy.deepcopy(base), "id": 5, "tax_amount": Decimal("1.0000001")}
    tiny = {**copy.deepcopy(base), "id": 6, "balance": Decimal("1E-600000")}
    rows = page.map_invoice_page([plain, huge, seven, tiny], ctx)
    assert rows is not None and list(rows.fallback) == [1, 2, 3]
    # And that page still loads exactly what the record mapper gives: the good record, and the
    # others refused with the record mapper's reasons.
    got = assert_same([[plain, huge, seven, tiny]], ctx)
    assert [r["invoice_id"] for r in got[INVOICES]] == [str(plain["id"])]


def test_money_stays_exact_on_the_vectorised_path(sandbox, base) -> None:
    _, projects = sandbox
    ctx = CONTEXTS["projects and a fallback"](projects)
    exact = {
        **copy.deepcopy(base),
        "amount": Decimal("123456789012.000001"),
        "tax_amount": Decimal("0.000001"),
        "amount_with_tax": Decimal("123456789012.000002"),
        "balance": Decimal("0.100000"),
    }
    exact["items"] = [{**exact["items"][0], "quantity": Decimal("0.001"), "price": Decimal("123.456")}]
    rows = page.map_invoice_page([exact], ctx)
    assert rows is not None and not rows.fallback
    assert rows.invoices.column("total").type == pa.decimal128(18, 6)
    assert rows.invoices.column("total").to_pylist() == [Decimal("123456789012.000002")]
    assert rows.invoices.column("subtotal").to_pylist() == [Decimal("123456789012.000001")]
    assert rows.items.column("subtotal").to_pylist() == [Decimal("0.123456")]
    assert_same([[exact]], ctx)


def test_remap_gets_each_record_s_rows_as_the_record_mapper_writes_them(sandbox, base) -> None:
    """What remap's writer receives, each record with its rows, is the record mapper's."""
    pages, projects = sandbox
    ctx = CONTEXTS["projects and a fallback"](projects)
    records = [*pages[0], *_untidy(base, projects)]
    assert shared.assert_remap_gets_each_record_s_rows(RECORD_BY_RECORD, API, records, ctx) > 20


def test_project_currencies_are_looked_up_only_when_a_record_is_mapped(sandbox, base) -> None:
    _, projects = sandbox
    asked: list[str] = []

    def lookup(name: str) -> Any:
        asked.append(name)
        return projects

    ctx = Context(API.provider, "acme", options={"currency": "USD"}, lookup=lookup)
    assert page.map_invoice_page([], ctx) is not None
    assert page.map_invoice_page([{**base, "status": "weird"}], ctx) is not None
    assert asked == []
    rows = page.map_invoice_page([base, {**base, "id": 1}], ctx)
    assert rows is not None and rows.invoices.num_rows == 2
    assert asked == ["projects"]


def test_a_record_that_is_not_an_object_is_reported_and_kept_on_both_paths(sandbox) -> None:
    pages, projects = sandbox
    good = [r for p in pages for r in p if r.get("items")][:3]
    shared.assert_not_objects_are_reported(API, good, CONTEXTS["projects and a fallback"](projects))
