"""The vectorised page mapper (`sources/flowpayroll/page.py`) gives exactly the rows of the
record mapper (`mapping.map_invoice`, the reference), row for row and column for column: on
every page the sandbox serves (its generated invoices and the published sample, under several
seeds, sizes and announced formats), on pages made untidier still, and on what it must leave to
the record mapper; with the context the driver gives (the page's formats, client names)."""

from __future__ import annotations

import copy
import dataclasses
from decimal import Decimal
from typing import Any

import httpx
import pyarrow as pa
import pytest

from sandbox.flowpayroll import FlowPayrollSandbox, create_app
from sources.flowpayroll import mapping, page
from sources.flowpayroll.api import API
from sources.shared.declaration import Api, Context
from sources.shared.model import INVOICE_ITEMS, INVOICES
from sources.shared.stats import RunStats
from sources.shared.values import loads
from tests import pages as shared
from tests.pages import UNTIDY_AMOUNTS

RECORD_BY_RECORD = shared.record_by_record(API)
Page = tuple[list[Any], Context]


def sandbox_pages(app: FlowPayrollSandbox, page_size: int = 3) -> list[Page]:
    """Every page of every client's invoices, decoded as the source decodes them, each with the
    context the driver gives it: the page's announced formats and the clients' names."""
    found: list[Page] = []
    with httpx.Client(transport=app.transport(), base_url="http://sandbox") as http:
        form = {"grant_type": "client_credentials", "client_id": app.client_id, "client_secret": app.client_secret}
        token = http.post("/oauth2/token", data=form).json()["access_token"]
        headers = {"X-Auth-Token": token}

        def listing(path: str, key: str) -> list[tuple[list[Any], Any]]:
            bodies, params = [], {"pageSize": page_size}
            while True:
                body = loads(http.get("/v1/billing" + path, params=params, headers=headers).content)
                data = body["content"]["data"]
                bodies.append((data[key], body))
                if not data.get("hasMorePages") or not data.get("paginationToken"):
                    return bodies
                params = {"pageSize": page_size, "paginationToken": data["paginationToken"]}

        clients = [c for records, _ in listing("/clients", "clients") for c in records]
        names = {c["id"]: c.get("name") for c in clients}
        for client in clients:
            for records, body in listing(f"/clients/{client['id']}/invoices", "invoices"):
                context = Context(API.provider, "acme", page=mapping.formats_from(body), client_names=names)
                found.append((records, context))
    return found


def through(api: Api, pages: list[Page], first_load: bool = False) -> tuple[dict[str, Any], RunStats, Any]:
    return shared.through(api, pages, first_load)


def assert_same(pages: list[Page], first_load: bool = False) -> dict[str, Any]:
    return shared.assert_same(API, pages, first_load)


def handled_by_the_columns(pages: list[Page]) -> tuple[int, int]:
    """(records the page mapper left to the record mapper, records), asserting it took every page."""
    left = total = 0
    for records, context in pages:
        rows = page.map_invoice_page(records, context)
        assert rows is not None
        left += len(rows.fallback)
        total += len(records)
    return left, total


@pytest.fixture(scope="module")
def pages() -> list[Page]:
    return sandbox_pages(create_app(fixtures=True))


def test_every_sandbox_page_gives_the_record_mappers_rows(pages) -> None:
    got = assert_same(pages)
    assert len(got[INVOICES]) >= 20 and len(got[INVOICE_ITEMS]) > len(got[INVOICES])
    # The published sample is among them, and the fast path maps it too.
    app = create_app(fixtures=True)
    assert app.published and app.published <= {r["invoice_id"] for r in got[INVOICES]}
    left, total = handled_by_the_columns(pages)
    assert left == 0, (left, total)


@pytest.mark.parametrize(
    "options",
    [
        {"seed": 1, "clients": 12, "invoices_per_client": 9},
        {"seed": 7, "clients": 3, "invoices_per_client": 25},
        {"seed": 2026, "clients": 30, "invoices_per_client": 2, "fixtures": False},
        {"seed": 5, "date_format": "dd/MM/yyyy", "datetime_format": "dd/MM/yyyy HH:mm:ss", "metadata_at": "top"},
        {"seed": 9, "datetime_format": "yyyy-MM-dd'T'HH:mm:ssZ", "metadata_at": "content"},
    ],
)
def test_other_seeds_sizes_and_formats_give_the_record_mappers_rows(options) -> None:
    pages = sandbox_pages(create_app(**options), page_size=7)
    got = assert_same(pages)
    assert got[INVOICES]
    left, _ = handled_by_the_columns(pages)
    assert left == 0


def test_an_appending_extract_gives_the_same_rows_on_both_paths(pages) -> None:
    assert_same(pages, first_load=True)


def _untidy(base: dict[str, Any]) -> list[dict[str, Any]]:
    """One invoice made untidy in each of the ways the record mapper reads or refuses."""
    changes: list[dict[str, Any]] = [
        {"amount": "12.30", "subTotal": "10.00", "totalTax": "2.30", "balanceDue": "12.30"},  # text: read exactly
        {"amount": "12.345", "subTotal": "10.0001", "totalTax": "2.344899", "balanceDue": "-0.000001"},  # 3-6 decimals
        {"amount": " 12.3456 ", "balanceDue": "12.3456"},
        {"amount": "12.3456789"},  # too many decimals as text: refused, never rounded
        {"amount": "1234567890123"},
        {"amount": " 1 000.50 "},  # text the record mapper reads its own way
        {"amount": "abc"},
        {"amount": None},  # required: refused
        {"subTotal": ""},
        {"totalTax": None},
        {"amount": Decimal("1.123")},
        {"amount": Decimal("1.1234")},
        {"amount": Decimal("1.12345")},
        {"amount": Decimal("1.123456")},
        {"amount": Decimal("1.1234567")},  # seven decimals: refused, never rounded
        {"amount": 10**20},  # far past DECIMAL(18, 6)
        {"amount": Decimal("999999999999.999999")},
        {"amount": Decimal("NaN")},
        {"amount": 1.5},  # a float: refused
        {"amount": True},
        {"balanceDue": None},  # the status cannot be derived: refused
        {"balanceDue": None, "externalProviderStatus": "VOIDED"},
        {"balanceDue": ""},
        {"balanceDue": 0},
        {"balanceDue": Decimal("-1.5")},
        {"balanceDue": Decimal("0.01")},
        {"balanceDue": Decimal("1E+3")},
        {"balanceDue": "x"},
        {"externalProviderStatus": " draft "},
        {"externalProviderStatus": "Submitted"},
        {"externalProviderStatus": "DELETED"},
        {"externalProviderStatus": "AUTHORISED"},
        {"externalProviderStatus": ""},
        {"externalProviderStatus": None},
        {"externalProviderStatus": 7},
        {"externalProviderStatus": True},
        {"currencyCode": "gbp"},
        {"currencyCode": " EUR "},
        {"currencyCode": "XYZ"},  # not an ISO 4217 code: refused
        {"currencyCode": "<string>"},
        {"currencyCode": ""},
        {"currencyCode": None},
        {"currencyCode": 826},
        {"date": "2024-02-31"},  # not a real date: refused
        {"date": "2024-02-01T23:30:00.000+01:00"},  # a timestamp: the day in its own offset
        {"date": "02/01/2024"},
        {"date": ""},
        {"date": 20240201},
        {"dueDate": None},
        {"createdDate": "2025-03-05T10:31:24Z"},
        {"createdDate": "2025-03-05T10:31:24.1234567+02:00"},
        {"createdDate": "yesterday"},
        {"updatedDate": ""},
        {"updatedDate": None},
        {"updatedDate": 5},
        {"id": None},  # refused
        {"id": ""},
        {"id": 7},
        {"id": True},
        {"clientId": None},
        {"clientId": ""},
        {"clientId": 12},
        {"clientId": "not a client of this run"},
        {"invoiceNumber": ""},
        {"invoiceNumber": 42},
        {"invoiceNumber": Decimal("1.0")},
        {"reference": None},
        {"reference": False},
        {"lineAmountTypes": "Inclusive"},
        {"lineAmountTypes": " inclusive "},
        {"lineAmountTypes": None},
        {"lineAmountTypes": "NoTax"},
        {"lineAmountTypes": 1},
        {"lineItems": []},
        {"lineItems": None},
        {"lineItems": {"id": "x"}},  # not a list: refused
        {"unknownField": {"nested": [1, Decimal("2.50")]}},
        {"attachments": [{"fileSize": 10**30}]},  # an integer orjson does not encode, in raw only
        *({key: value} for key in ("amount", "subTotal", "totalTax", "balanceDue") for value in UNTIDY_AMOUNTS),
    ]
    line_changes: list[dict[str, Any]] = [
        {"quantity": "1 000.5"},
        {"quantity": "1e3"},
        {"quantity": "2.125"},
        {"unitAmount": "0.000001"},
        {"taxAmount": "-0.12345"},
        {"quantity": "abc"},
        {"quantity": ""},
        {"quantity": None},
        {"quantity": True},
        {"quantity": 2.5},
        {"unitAmount": "0.1234567"},
        {"unitAmount": Decimal("0.123456")},
        {"unitAmount": Decimal("12.3")},
        {"lineAmount": None},
        {"lineAmount": "10.5"},
        {"lineAmount": Decimal("123456789012.123456")},
        {"lineAmount": Decimal("1234567890123")},
        {"taxAmount": None},
        {"taxAmount": ""},
        {"taxAmount": Decimal("-2.000001")},
        {"description": 5},
        {"description": None},
        {"description": ""},
        {"description": Decimal("1.5")},
        {"id": None},
        {"id": ""},
        {"id": 3},
        *({key: value} for key in ("quantity", "unitAmount", "taxAmount", "lineAmount") for value in UNTIDY_AMOUNTS),
    ]
    documents = []
    for n, change in enumerate(changes):
        documents.append({**copy.deepcopy(base), **change, "id": change.get("id", f"untidy-{n}")})
    for n, change in enumerate(line_changes):
        for inclusive in ("Exclusive", "Inclusive"):
            document = copy.deepcopy(base)
            document["id"] = f"untidy-line-{n}-{inclusive}"
            document["lineAmountTypes"] = inclusive
            document["lineItems"] = [{**item, **change} for item in document["lineItems"]]
            documents.append(document)
    documents.append({**copy.deepcopy(base), "id": "no-keys"} | {k: None for k in base if k != "id"})
    documents.append({"id": "bare"})
    missing = copy.deepcopy(base)
    for key in ("balanceDue", "currencyCode", "date", "lineItems", "clientId", "externalProviderStatus"):
        missing.pop(key, None)
    documents.append({**missing, "id": "missing-keys"})
    return documents


def _base(pages: list[Page]) -> tuple[dict[str, Any], Context]:
    return next((r, c) for p, c in pages for r in p if len(r.get("lineItems") or []) > 1)


def test_untidy_invoices_give_the_record_mappers_rows_or_the_same_refusals(pages) -> None:
    base, context = _base(pages)
    documents = _untidy(base)
    # Each on a page of its own (a page Arrow refuses falls back whole), then all on one page.
    assert_same([([d], context) for d in documents])
    assert_same([(documents, context)])
    # Some are refused on both paths, most are read.
    _, stats, _ = through(RECORD_BY_RECORD, [(documents, context)])
    assert 10 < sum(stats.skipped.values()) < len(documents) / 2


def test_the_context_the_driver_gives_is_read_as_the_record_mapper_reads_it(pages) -> None:
    base, context = _base(pages)
    documents = [*_untidy(base), base]
    client = str(base["clientId"])
    contexts = [
        context,
        dataclasses.replace(context, client_names={}),  # no clients listed: no names
        dataclasses.replace(context, client_names={client: None}),
        dataclasses.replace(context, client_names={client: ""}),
        dataclasses.replace(context, client_names={client: "Renamed Ltd", "": "the blank client"}),
        dataclasses.replace(context, account="another-organisation"),
        dataclasses.replace(context, page=mapping.Formats("dd/MM/yyyy", "dd/MM/yyyy HH:mm")),  # nothing matches
        dataclasses.replace(context, page=mapping.Formats("yyyy-MM-dd", "yyyy-MM-dd'T'HH:mm:ss")),  # no offset
        dataclasses.replace(context, page=mapping.Formats("no day here", "yyyy-MM-dd'T'HH:mm:ss.fffZ")),
        dataclasses.replace(context, options={"fallback_currency": "EUR"}),  # not read by this provider
    ]
    for each in contexts:
        assert_same([(documents, each)])
        assert_same([([d], each) for d in documents])
    # Two pages announcing different formats, the same values: each read in its own page's formats.
    other = dataclasses.replace(context, page=mapping.Formats("yyyy-dd-MM", "yyyy-MM-dd'T'HH:mm:ss.fffZ"))
    assert_same([([base], context), ([{**base, "id": "other"}], other)])


def test_what_the_columns_do_not_take_exactly_is_left_to_the_record_mapper(pages) -> None:
    base, context = _base(pages)
    plain = copy.deepcopy(base)
    as_text = {**copy.deepcopy(base), "id": "1", "amount": "1 000.50"}  # read by the record mapper only
    unknown = {**copy.deepcopy(base), "id": "2", "currencyCode": "XYZ"}
    underived = {**copy.deepcopy(base), "id": "3", "balanceDue": None, "externalProviderStatus": None}
    rows = page.map_invoice_page([plain, as_text, unknown, underived], context)
    assert rows is not None
    assert list(rows.fallback) == [1, 2, 3]
    assert rows.invoices.num_rows == 1
    assert rows.items.num_rows == len(base["lineItems"])
    # An amount past DECIMAL(18, 6) is left to the record mapper, the rest of the page is mapped.
    huge = {**copy.deepcopy(base), "id": "4", "amount": Decimal("9999999999999.5")}
    seven = {**copy.deepcopy(base), "id": "5", "subTotal": Decimal("1.0000001")}
    tiny = {**copy.deepcopy(base), "id": "7", "balanceDue": Decimal("1E-600000")}
    rows = page.map_invoice_page([plain, huge, seven, tiny], context)
    assert rows is not None and list(rows.fallback) == [1, 2, 3]
    # A line total past DECIMAL(18, 6) (both amounts fit, their sum does not): refused by Arrow,
    # the whole page goes record by record.
    lines = [{**base["lineItems"][0], "lineAmount": Decimal("999999999999"), "taxAmount": Decimal("999999999999")}]
    vast = {**copy.deepcopy(base), "id": "6", "lineItems": lines}
    assert page.map_invoice_page([plain, vast], context) is None
    # A page without announced formats is read record by record.
    assert page.map_invoice_page([plain], dataclasses.replace(context, page=None)) is None
    # And such pages still load exactly what the record mapper gives: the good record, and the
    # others refused with the record mapper's reasons.
    got = assert_same([([plain, huge, vast], context)])
    assert [r["invoice_id"] for r in got[INVOICES]] == [str(plain["id"])]


def test_money_stays_exact_on_the_vectorised_path(pages) -> None:
    base, context = _base(pages)
    exact = {**copy.deepcopy(base), "amount": Decimal("123456789012.000001"), "subTotal": Decimal("0.000001")}
    exact |= {"totalTax": Decimal("123456789012.000000"), "balanceDue": Decimal("0.000001")}
    exact["lineItems"] = [
        {**exact["lineItems"][0], "lineAmount": Decimal("0.100001"), "taxAmount": Decimal("0.200002")},
    ]
    for inclusive, (subtotal, total) in {
        "Exclusive": (Decimal("0.100001"), Decimal("0.300003")),
        "Inclusive": (Decimal("-0.100001"), Decimal("0.100001")),
    }.items():
        rows = page.map_invoice_page([{**exact, "lineAmountTypes": inclusive}], context)
        assert rows is not None and not rows.fallback
        assert rows.invoices.column("total").type == pa.decimal128(18, 6)
        assert rows.invoices.column("total").to_pylist() == [Decimal("123456789012.000001")]
        assert rows.invoices.column("status").to_pylist() == ["partially_paid"]
        assert rows.items.column("subtotal").to_pylist() == [subtotal]
        assert rows.items.column("total").to_pylist() == [total]
        assert_same([([{**exact, "lineAmountTypes": inclusive}], context)])


def test_equal_values_of_other_types_are_each_read_as_themselves(pages) -> None:
    """`True`, `1` and `Decimal("1.0")` are equal in Python, not to the record mapper."""
    base, context = _base(pages)
    documents = [
        {**copy.deepcopy(base), "id": f"same-{n}", key: value}
        for n, (key, value) in enumerate(
            (key, value)
            for key in ("currencyCode", "externalProviderStatus", "date", "lineAmountTypes", "invoiceNumber")
            for value in (True, 1, Decimal("1.0"), "1", "GBP", "2025-03-05")
        )
    ]
    assert_same([(documents, context)])
    assert_same([(list(reversed(documents)), context)])


def test_remap_gets_each_record_s_rows_as_the_record_mapper_writes_them(pages) -> None:
    """What remap's writer receives, each record with its rows, is the record mapper's."""
    base, context = _base(pages)
    records = [*pages[0][0], *_untidy(base)]
    assert shared.assert_remap_gets_each_record_s_rows(RECORD_BY_RECORD, API, records, context) > 10


def test_a_record_that_is_not_an_object_is_reported_and_kept_on_both_paths(pages) -> None:
    records, context = next((p, c) for p, c in pages if len(p) >= 3)
    shared.assert_not_objects_are_reported(API, records[:3], context)
