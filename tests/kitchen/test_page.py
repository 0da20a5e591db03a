"""The vectorised page mapper (`sources/kitchen/page.py`) gives exactly the rows of the record
mapper (`mapping.map_invoice`, the reference), row for row and column for column: on every page
the sandbox serves (generated workspaces of several seeds and sizes, and the published sample),
on pages made untidy in every field the mapper reads, with the client names the driver passes,
and on what it must leave to the record mapper."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import httpx
import pyarrow as pa
import pytest

from sandbox import kitchen
from sources.kitchen import mapping, page
from sources.kitchen.api import API
from sources.shared.declaration import Api, Context
from sources.shared.model import INVOICES
from sources.shared.stats import RunStats
from sources.shared.values import loads
from tests import pages as shared
from tests.pages import UNTIDY_AMOUNTS

RECORD_BY_RECORD = shared.record_by_record(API)
DELETE = object()  # a change that removes the key


def listing(app: kitchen.KitchenApp, path: str, per_page: int) -> list[list[Any]]:
    """Every page of one listing, decoded as the source decodes them."""
    headers = {
        "Authorization": f"Bearer {app.api_key}",
        "Accept": "application/json",
        "X-Requested-With": "XMLHttpRequest",
    }
    pages: list[list[Any]] = []
    with httpx.Client(transport=app.transport(), base_url="http://sandbox", headers=headers) as client:
        number = 1
        while True:
            response = client.get(path, params={"state": "all", "page": number, "per_page": per_page})
            body = loads(response.content)
            pages.append(body["data"])
            if number >= body["meta"]["last_page"]:
                return pages
            number += 1


def workspace(app: kitchen.KitchenApp, per_page: int = 20) -> tuple[list[list[Any]], Context]:
    clients = [c for p in listing(app, "/api/clients", 50) for c in p]
    names = mapping.client_names(clients)
    return listing(app, "/api/invoices", per_page), Context(API.provider, "acme", client_names=names)


def through(
    api: Api, pages: list[list[Any]], context: Context, first_load: bool = False
) -> tuple[dict[str, Any], RunStats, Any]:
    return shared.through(api, [(p, context) for p in pages], first_load)


def assert_same(pages: list[list[Any]], context: Context, first_load: bool = False) -> dict[str, Any]:
    return shared.assert_same(API, [(p, context) for p in pages], first_load)


@pytest.fixture(scope="module")
def sandbox() -> tuple[list[list[Any]], Context]:
    return workspace(kitchen.create_app(fixtures=True), per_page=20)


@pytest.fixture(scope="module")
def base(sandbox) -> dict[str, Any]:
    pages, _ = sandbox
    return next(r for p in pages for r in p if len(r.get("items") or []) > 1 and r.get("client"))


def test_every_sandbox_page_gives_the_record_mappers_rows(sandbox) -> None:
    pages, context = sandbox
    got = assert_same(pages, context)
    assert len(got[INVOICES]) == sum(len(p) for p in pages) > 40
    # The published sample is among them, and some invoices name a listed client.
    assert kitchen.create_app().published <= {r["invoice_id"] for r in got[INVOICES]}
    assert any(r["client_name"] for r in got[INVOICES])
    # The fast path maps every generated page itself, almost every record on it.
    handled = [page.map_invoice_page(p, context) for p in pages if p]
    assert all(rows is not None for rows in handled)
    left = sum(len(rows.fallback) for rows in handled if rows is not None)
    assert left <= 0.05 * sum(len(p) for p in pages), left


@pytest.mark.parametrize(
    ("seed", "clients", "invoices", "per_page"), [(1, 3, 7, 3), (7, 20, 400, 100), (99, 50, 250, 37)]
)
def test_other_workspaces_give_the_record_mappers_rows(seed: int, clients: int, invoices: int, per_page: int) -> None:
    pages, context = workspace(kitchen.create_app(seed=seed, clients=clients, invoices=invoices), per_page)
    got = assert_same(pages, context)
    assert len(got[INVOICES]) == invoices + 1
    assert_same(pages, context, first_load=True)


def test_the_client_names_the_driver_gives_are_read_as_the_record_mapper_reads_them(sandbox) -> None:
    pages, context = sandbox
    ids = list(context.client_names)
    for names in (
        {},  # no client listed
        {ids[0]: None, ids[1]: ""},  # a client without a name, or with an empty one
        {i: f"renamed {n}" for n, i in enumerate(ids[::2])},  # some clients missing
    ):
        assert_same(pages, Context(API.provider, "acme", client_names=names))


def _changed(base: dict[str, Any], change: dict[str, Any], invoice_id: str) -> dict[str, Any]:
    record = copy.deepcopy(base)
    record["id"] = invoice_id
    for key, value in change.items():
        if value is DELETE:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def _untidy(base: dict[str, Any]) -> list[dict[str, Any]]:
    """One invoice made untidy in each of the ways the record mapper reads or refuses."""
    stamps = ["created_at", "updated_at", "paid_at", "voided_at", "issue_date", "due_date"]
    odd_stamps: list[Any] = [
        None,
        "",
        DELETE,
        "2024-03-13T09:16:53Z",
        "2024-03-13T09:16:53.123+02:00",
        "2024-03-13T09:16:53.123456-05:30",
        "2024-03-13T23:30:00-05:00",  # another calendar day in UTC
        "2024-03-13T09:16:53",  # no offset: UTC
        "2024-03-13T09:16:53.1234567Z",
        "2024-03-13 09:16:53",
        " 2024-03-13T09:16:53+00:00 ",
        "2024-03-13",
        "2024-02-30T09:16:53+00:00",
        "2024-03-13T24:00:00+00:00",
        "2024-03-13T09:16:60+00:00",
        "2024-03-13T09:16:53+25:00",
        "0000-01-01T00:00:00+00:00",
        "13/03/2024",
        "nope",
        0,
        True,
        Decimal("1.5"),
    ]
    money_fields = ["total_amount", "tax_amount", "shipping_amount", "discount_amount"]
    odd_money: list[Any] = [
        None,
        "",
        "  ",
        DELETE,
        "12.30",
        " 12.30 ",
        "-0.50",
        "1 000.50",
        "1e3",
        "12.",
        "abc",
        7,
        0,
        -3,
        True,
        1.5,
        Decimal("12.345"),
        Decimal("12.34567"),
        Decimal("12.123456"),
        Decimal("1.1234567"),  # seven decimals: refused, never rounded
        Decimal("1.1000000"),  # seven written, six meant
        Decimal("999999999999.999999"),
        Decimal("1000000000000"),  # past DECIMAL(18, 6)
        10**20,
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("1E+3"),
        [],
        {},
        *UNTIDY_AMOUNTS,
    ]
    changes: list[dict[str, Any]] = [{key: value} for key in stamps for value in odd_stamps]
    changes += [{key: value} for key in money_fields for value in odd_money]
    changes += [
        {"tax_amount": None, "tax_items": []},  # no tax item: no tax
        {"tax_amount": DELETE, "tax_items": []},
        {"tax_amount": None, "tax_items": None},
        {"tax_amount": None, "tax_items": "none"},
        {"discount_amount": None, "discounts": []},
        {"discount_amount": "", "discounts": []},
        {"discount_amount": None, "discounts": DELETE},
        {"discount_amount": None, "discounts": {}},
    ]
    odd: dict[str, list[Any]] = {
        "id": [None, "", 7, True, DELETE, Decimal("7.0")],
        "status": [
            "draft",
            "open",
            "paid",
            "void",
            "uncollectible",
            " Paid ",
            "OPEN",
            "weird",
            "partially_paid",
            "",
            None,
            DELETE,
            1,
            True,
            Decimal("1.0"),
        ],
        "currency": ["usd", " EUR ", "HRK", "XYZ", "ESC", "US", "", None, DELETE, 5, True],
        "client": [None, DELETE, "u_not_listed", "", 5, True, Decimal("5.0")],
        "number": [None, DELETE, "", 42, True, Decimal("42.0")],
        # Equal in Python, not to the record mapper: on one page, each read as itself.
        "type": ["", None, DELETE, "invoice", "VatMossInvoice", "credit note", True, 1, Decimal("1.0")],
        "archived_at": [None, DELETE, "", "2024-03-13T09:16:53+00:00", False],
        "memo": [None, DELETE, "", 5, True, Decimal("5.5"), ["a"]],
        "items": [None, DELETE, [], "", {}, "x", 0, False, [1], [None], [[]]],
    }
    changes += [{key: value} for key, values in odd.items() for value in values]
    documents = [_changed(base, change, f"in_untidy_{n:04d}") for n, change in enumerate(changes)]
    line_changes: dict[str, list[Any]] = {
        "quantity": [
            "1.00",
            "2.5",
            "1 000.5",
            "1e3",
            "abc",
            "",
            None,
            DELETE,
            3,
            True,
            1.5,
            Decimal("0.0000001"),
            "1.1234567",
            "0.001",  # x an amount of 4 decimals: a product of 7, refused
            "999999999999",  # a product past DECIMAL(18, 6)
            *UNTIDY_AMOUNTS,
        ],
        "amount": [
            "150.00",
            Decimal("0.0001"),
            Decimal("12.345"),
            None,
            DELETE,
            "",
            "x",
            True,
            1.5,
            7,
            Decimal("1.1234567"),
            Decimal("1000000000000"),
            *UNTIDY_AMOUNTS,
        ],
        "title": [None, DELETE, "", 5, True, Decimal("1.5")],
        "description": [None, DELETE, 5, False],
        "id": [None, DELETE, 7, True],
    }
    for key, values in line_changes.items():
        for value in values:
            document = copy.deepcopy(base)
            document["id"] = f"in_line_{len(documents):04d}"
            document["items"] = [_set(dict(item), key, value) for item in document["items"]]
            documents.append(document)
    # Quantity and amount each far past DECIMAL(18, 6): refused before they are multiplied.
    document = copy.deepcopy(base)
    document["id"] = "in_line_vast"
    document["items"][0].update(quantity=Decimal("1E+600000"), amount=Decimal("1E+600000"))
    documents.append(document)
    document = copy.deepcopy(base)
    document["id"] = "in_line_tiny"
    document["items"][0].update(quantity=Decimal("1E-600000"), amount=Decimal("1E-600000"))
    documents.append(document)
    # One line odd among good ones.
    document = copy.deepcopy(base)
    document["id"] = "in_one_odd_line"
    document["items"][-1]["quantity"] = "abc"
    documents.append(document)
    return documents


def _set(record: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    if value is DELETE:
        record.pop(key, None)
    else:
        record[key] = value
    return record


def test_untidy_invoices_give_the_record_mappers_rows_or_the_same_refusals(sandbox, base) -> None:
    _, context = sandbox
    documents = _untidy(base)
    # Each on a page of its own (a page Arrow refuses falls back whole), then all on one page.
    got = assert_same([[d] for d in documents], context)
    assert len(got[INVOICES]) > 100
    assert_same([documents], context)
    # And mixed into the sandbox's own pages.
    assert_same([[*documents[n::40], base] for n in range(40)], context)


def test_what_the_columns_do_not_take_exactly_is_left_to_the_record_mapper(sandbox, base) -> None:
    _, context = sandbox
    plain = copy.deepcopy(base)
    as_text = {**copy.deepcopy(base), "id": "in_1", "total_amount": "1 000.50"}  # the record mapper's to read
    unknown = {**copy.deepcopy(base), "id": "in_2", "currency": "XYZ"}
    no_tax = {**copy.deepcopy(base), "id": "in_3", "tax_amount": None}  # tax items listed: refused
    rows = page.map_invoice_page([plain, as_text, unknown, no_tax, "not an object"], context)
    assert rows is not None
    assert list(rows.fallback) == [1, 2, 3, 4]
    assert rows.invoices.num_rows == 1
    assert rows.items.num_rows == len(base["items"])
    # An amount that does not fit DECIMAL(18, 6) exactly: the record mapper's to refuse, never rounded;
    # one Arrow would read as 0 among them.
    huge = {**copy.deepcopy(base), "id": "in_4", "total_amount": Decimal("9999999999999.5")}
    seven = {**copy.deepcopy(base), "id": "in_5", "shipping_amount": Decimal("1.0000001")}
    tiny = {**copy.deepcopy(base), "id": "in_8", "discount_amount": Decimal("1E-600000")}
    rows = page.map_invoice_page([plain, huge, seven, tiny], context)
    assert rows is not None and list(rows.fallback) == [1, 2, 3]
    # A derived subtotal (total − tax − shipping) past DECIMAL(18, 6): refused, never wrapped or rounded.
    wide = {**copy.deepcopy(base), "id": "in_6", "total_amount": Decimal("999999999999"), "shipping_amount": 0}
    wide["tax_amount"] = Decimal("-999999999999")
    assert page.map_invoice_page([plain, wide], context) is None
    # A timestamp that leaves the datetime range in UTC: the record mapper's to read (or fail on).
    for stamp in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        edge = {**copy.deepcopy(base), "id": "in_7", "updated_at": stamp}
        rows = page.map_invoice_page([plain, edge], context)
        assert rows is not None and list(rows.fallback) == [1]
        # As a calendar day it is read in its own offset, on both paths.
        assert_same([[plain, {**edge, "updated_at": base["updated_at"], "issue_date": stamp}]], context)
    # And that page still loads exactly what the record mapper gives: the good record, and the
    # other refused with the record mapper's reason.
    got = assert_same([[plain, huge, seven, tiny]], context)
    assert [r["invoice_id"] for r in got[INVOICES]] == [plain["id"]]


def test_money_stays_exact_on_the_vectorised_path(sandbox, base) -> None:
    _, context = sandbox
    exact = {
        **copy.deepcopy(base),
        "total_amount": Decimal("123456789012.000001"),
        "tax_amount": Decimal("123456789011.999999"),
        "shipping_amount": Decimal("0.000001"),
        "discount_amount": Decimal("0.000001"),
    }
    exact["items"][0].update(quantity="0.001", amount=Decimal("123.456"))
    rows = page.map_invoice_page([exact], context)
    assert rows is not None and not rows.fallback
    assert rows.invoices.column("total").type == pa.decimal128(18, 6)
    assert rows.invoices.column("total").to_pylist() == [Decimal("123456789012.000001")]
    assert rows.invoices.column("subtotal").to_pylist() == [Decimal("0.000001")]
    assert rows.items.column("subtotal").to_pylist()[0] == Decimal("0.123456")


def test_remap_gets_each_record_s_rows_as_the_record_mapper_writes_them(sandbox, base) -> None:
    """What remap's writer receives, each record with its rows, is the record mapper's."""
    pages, context = sandbox
    records = [*pages[0], *_untidy(base)]
    assert shared.assert_remap_gets_each_record_s_rows(RECORD_BY_RECORD, API, records, context) > 10


def test_a_record_that_is_not_an_object_is_reported_and_kept_on_both_paths(sandbox) -> None:
    pages, context = sandbox
    good = [r for p in pages for r in p if r.get("items")][:3]
    shared.assert_not_objects_are_reported(API, good, context)
