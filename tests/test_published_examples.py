"""What the contract (docs/canonical-model.md) makes of every example body the providers publish.

The bodies are kept as the docs print them (tests/fixtures/published/README.md): those a sandbox serves
in `sandbox/<provider>/samples/`, the others in `tests/fixtures/published/<provider>/`, never in both.
Each test is named for the contract's verdict on one example, read through the record mappers.
"""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sandbox.invoicexpress.data import as_listed
from sources.flowpayroll import mapping as flowpayroll
from sources.fohlio import mapping as fohlio
from sources.invoicexpress import mapping as invoicexpress
from sources.kitchen import mapping as kitchen
from sources.shared.model import total_mismatch
from sources.shared.values import ValueProblem, loads

ROOT = Path(__file__).parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "published"
UTC = dt.UTC


def home(provider: str, name: str) -> Path:
    """The one file holding a published body: in the sandbox's samples if it serves it, else here."""
    [path] = [p for p in (FIXTURES / provider / name, ROOT / "sandbox" / provider / "samples" / name) if p.exists()]
    return path


def published(provider: str, name: str) -> Any:
    """A published body, numbers decoded exactly as JSON text (never through a float)."""
    return loads(home(provider, name).read_text(encoding="utf-8"))


def test_every_published_body_is_kept_once() -> None:
    kept_here = {(p.parent.name, p.name) for p in FIXTURES.glob("*/*.json")}
    served = {(p.parents[1].name, p.name) for p in (ROOT / "sandbox").glob("*/samples/*.json")}
    assert kept_here and not kept_here & served


# --- Kitchen (developer.kitchen.co, docs/providers.md §3.6) -------------------------------------------
def test_kitchen_list_example_maps_and_adds_up_with_its_shipping_of_19_99() -> None:
    page = published("kitchen", "list_invoices.json")
    assert kitchen.error_message(page) is None  # a page of records, not an error body
    [invoice] = page["data"]
    mapped = kitchen.map_invoice(invoice, "acme", {})
    row = mapped.invoice
    assert (row["discount_total"], row["tax_total"], row["shipping_total"]) == (
        Decimal("341.47"),
        Decimal("154.73"),
        Decimal("19.99"),
    )
    assert (
        invoice["amount"] - invoice["discount_amount"] + invoice["tax_amount"] + invoice["shipping_amount"]
        == (row["total"])
    )
    assert row["total"] == Decimal("508.90") and row["subtotal"] == Decimal("334.18") and not total_mismatch(row)
    assert (row["status"], row["balance_due"], row["is_archived"]) == ("paid", 0, False)
    [line] = mapped.items
    assert (line["quantity"], line["unit_price"], line["subtotal"]) == (
        Decimal("1.00"),
        Decimal("675.65"),
        Decimal("675.65"),
    )
    # Its item lists hold rates, not amounts: 46.3 % of the net 334.18 and 50.54 % of 675.65.
    cent = Decimal("0.01")
    assert (row["subtotal"] * invoice["tax_items"][0]["amount"] / 100).quantize(cent) == row["tax_total"]
    assert (invoice["amount"] * invoice["discounts"][0]["amount"] / 100).quantize(cent) == row["discount_total"]


def test_kitchen_archive_example_writes_no_shipping_and_maps_with_the_0_its_figures_prove() -> None:
    invoice = published("kitchen", "archive_invoice.json")
    assert "shipping_amount" not in invoice
    assert invoice["amount"] - invoice["discount_amount"] + invoice["tax_amount"] == invoice["total_amount"]
    row = kitchen.map_invoice(invoice, "acme", {}).invoice
    assert row["shipping_total"] == 0 and row["total"] == Decimal("488.91") and row["subtotal"] == Decimal("334.18")
    assert (row["discount_total"], row["tax_total"]) == (Decimal("341.47"), Decimal("154.73"))
    assert row["is_archived"] is True and not total_mismatch(row)


def test_kitchen_archive_example_whose_figures_no_longer_add_up_is_unmapped_with_its_reason() -> None:
    invoice = {**published("kitchen", "archive_invoice.json"), "total_amount": Decimal("490.00")}
    with pytest.raises(ValueProblem) as problem:
        kitchen.map_invoice(invoice, "acme", {})
    assert str(problem.value) == (
        "shipping_amount: missing, and amount − discount_amount + tax_amount = 488.91, not total_amount 490.00,"
        " so 0 is not proven (subtotal = total_amount − tax_amount − shipping_amount cannot be derived)"
    )


# --- InvoiceXpress (docs.invoicexpress.com and its OpenAPI description, docs/providers.md §1.7) ----------
def test_invoicexpress_list_example_maps_exactly_with_nothing_withheld() -> None:
    [document] = published("invoicexpress", "list_client_invoices.json")["invoices"]
    mapped = invoicexpress.map_invoice(document, "acme")
    row = mapped.invoice
    assert (row["currency"], row["subtotal"], row["tax_total"], row["total"]) == (
        "EUR",
        1,
        Decimal("0.07"),
        Decimal("1.07"),
    )
    assert row["withholding_total"] == 0 and not total_mismatch(row)
    [item] = mapped.items
    assert (item["unit_price"], item["quantity"]) == (Decimal("1.0"), Decimal("1.0"))  # sent as strings


def test_invoicexpress_single_document_example_maps_and_leaves_its_missing_line_figures_null() -> None:
    document = published("invoicexpress", "get_invoice.json")["invoice"]
    mapped = invoicexpress.map_invoice(document, "acme")
    row = mapped.invoice
    assert row["invoice_id"] == "2137287" and row["number"] == "6/G" and row["status"] == "open"
    assert row["issue_date"] == dt.date(2016, 8, 4) and row["due_date"] == dt.date(2016, 8, 19)
    assert row["currency"] == "EUR" and row["is_archived"] is False
    assert row["subtotal"] == Decimal("24.39") and row["tax_total"] == Decimal("5.61")
    assert row["total"] == Decimal("30") and row["withholding_total"] == Decimal("0.00")
    assert not total_mismatch(row)
    assert row["reference"] == "ref123" and row["notes"] == "Observations"
    [item] = mapped.items
    # Numbers where the list sends strings; the item carries no subtotal or tax_amount: NULL, not derived.
    assert item["unit_price"] == Decimal(100) and item["quantity"] == Decimal(1) and item["unit"] == "un"
    assert item["tax_rate"] == Decimal(23) and item["total"] == Decimal(123)
    assert item["subtotal"] is None and item["tax_amount"] is None


def test_invoicexpress_single_document_example_listed_with_string_lines_maps_to_the_same_rows() -> None:
    document = published("invoicexpress", "get_invoice.json")["invoice"]
    listed = as_listed(document)  # as the sandbox lists it: the list schema's strings
    assert (listed["items"][0]["unit_price"], listed["items"][0]["quantity"]) == ("100.0", "1.0")
    rows, as_numbers = invoicexpress.map_invoice(listed, "acme"), invoicexpress.map_invoice(document, "acme")
    assert {k: v for k, v in rows.invoice.items() if k != "raw"} == {
        k: v for k, v in as_numbers.invoice.items() if k != "raw"
    }
    assert [{k: v for k, v in i.items() if k != "raw"} for i in rows.items] == [
        {k: v for k, v in i.items() if k != "raw"} for i in as_numbers.items
    ]


@pytest.mark.parametrize("case", published("invoicexpress", "error_bodies.json"), ids=lambda case: case["schema"])
def test_invoicexpress_error_examples_give_the_apis_own_words(case: dict[str, Any]) -> None:
    assert invoicexpress.error_message(case["body"]) == case["message"]


# --- Flow Payroll (docs.flowpayroll.ai, docs/providers.md §2.6) ---------------------------------------
DOCUMENTED_FORMATS = flowpayroll.Formats("yyyy-MM-dd", "yyyy-MM-dd'T'HH:mm:ss.fffZ")


def test_flowpayroll_list_example_is_a_skeleton_refused_on_its_placeholders_never_guessed() -> None:
    body = published("flowpayroll", "list_invoices_for_client.json")
    formats = flowpayroll.formats_from(body)
    assert formats == flowpayroll.Formats("<string>", "<string>")
    [invoice] = body["content"]["data"]["invoices"]
    with pytest.raises(ValueProblem):
        flowpayroll.map_invoice(invoice, account="a", client_name=None, formats=formats)
    # Under the documented formats its placeholder date is refused, then its placeholder currency.
    with pytest.raises(ValueProblem, match="date: '<string>' matches neither"):
        flowpayroll.map_invoice(invoice, account="a", client_name=None, formats=DOCUMENTED_FORMATS)
    dated = {**invoice, "date": "2023-11-07", "dueDate": None, "createdDate": None, "updatedDate": None}
    with pytest.raises(ValueProblem, match="currencyCode: '<string>' is not an ISO 4217 code"):
        flowpayroll.map_invoice(dated, account="a", client_name=None, formats=DOCUMENTED_FORMATS)


def test_flowpayroll_list_example_with_documented_values_maps_and_its_123s_count_as_a_mismatch() -> None:
    [invoice] = published("flowpayroll", "list_invoices_for_client.json")["content"]["data"]["invoices"]
    invoice.update(
        currencyCode="GBP",
        date="2023-11-07",
        dueDate="2023-12-07",
        createdDate="2023-11-07T05:31:56Z",
        updatedDate="2023-11-07T05:31:56.250Z",
        externalProviderStatus="AUTHORISED",  # a value of our choosing: the docs give "<string>" only
    )
    invoice["lineItems"][0].update(date="2023-11-07", createdDate="2023-11-07T05:31:56Z")
    mapped = flowpayroll.map_invoice(invoice, account="a", client_name="Acme", formats=DOCUMENTED_FORMATS)
    row = mapped.invoice
    assert row["currency"] == "GBP" and row["status"] == "open"
    assert row["total"] == row["subtotal"] == row["tax_total"] == row["balance_due"] == 123
    assert row["created_at"] == dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)
    assert row["updated_at"] == dt.datetime(2023, 11, 7, 5, 31, 56, 250000, tzinfo=UTC)
    assert total_mismatch(row)  # 123 + 123 ≠ 123: kept as sent, counted
    [item] = mapped.items
    assert item["subtotal"] == 123 and item["total"] == 246


# --- Fohlio (apidocs.fohlio.com, docs/providers.md §4.6) ----------------------------------------------
def dated(invoice: dict[str, Any]) -> dict[str, Any]:
    """The skeleton with dates in its two date placeholders, as the sandbox serves it."""
    invoice = copy.deepcopy(invoice)
    invoice["invoice_date"] = "2023-11-07"
    invoice["payment_terms"][0]["due_date"] = "2023-12-07"
    return invoice


@pytest.mark.parametrize(
    ("name", "pick"), [("get_client_invoice.json", lambda b: b), ("list_client_invoices.json", lambda b: b[0])]
)
def test_fohlio_examples_are_refused_on_their_placeholder_invoice_date_never_guessed(name: str, pick: Any) -> None:
    with pytest.raises(ValueProblem, match="invoice_date: '<string>'"):
        fohlio.map_invoice(pick(published("fohlio", name)), provider="fohlio", account="studio", currency="USD")


def test_fohlio_get_example_once_dated_maps_and_its_123s_count_as_a_mismatch() -> None:
    invoice = dated(published("fohlio", "get_client_invoice.json"))
    assert fohlio.resolve_currency(invoice, {}, "usd") == "USD"  # client.data is {}: the configured currency
    mapped = fohlio.map_invoice(invoice, provider="fohlio", account="studio", currency="USD")
    row = mapped.invoice
    assert row["invoice_id"] == "123" and row["status"] == "draft" and row["client_id"] == "123"
    assert row["subtotal"] == 123 and row["tax_total"] == 123 and row["total"] == 123 and row["balance_due"] == 123
    assert row["created_at"] == dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)
    assert row["due_date"] == dt.date(2023, 12, 7)
    assert total_mismatch(row)  # 123 + 123 ≠ 123: kept as sent, counted
    [item] = mapped.items
    assert item["quantity"] == 123 and item["unit_price"] == 123 and item["subtotal"] == 123 * 123


def test_fohlio_list_example_once_dated_maps_to_the_rows_of_the_get_example() -> None:
    # The listing's client writes `categories[]` and `priority` flags where the single GET writes `category`.
    [listed] = published("fohlio", "list_client_invoices.json")
    single = published("fohlio", "get_client_invoice.json")
    assert "categories" in listed["client"] and "category" in single["client"]
    assert {k: v for k, v in listed.items() if k != "client"} == {k: v for k, v in single.items() if k != "client"}
    rows = [
        fohlio.map_invoice(dated(body), provider="fohlio", account="studio", currency="USD")
        for body in (listed, single)
    ]
    listed_row, single_row = ({k: v for k, v in r.invoice.items() if k != "raw"} for r in rows)
    assert listed_row == single_row
    assert [i["subtotal"] for i in rows[0].items] == [i["subtotal"] for i in rows[1].items] == [123 * 123]
