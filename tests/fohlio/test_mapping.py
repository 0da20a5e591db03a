"""Every Fohlio quirk the mapping handles, on payloads shaped like the documented ones."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from sources.fohlio.mapping import (
    STATUS_MAP,
    client_categories,
    currency_code,
    due_date,
    error_message,
    map_client,
    map_invoice,
    project_currencies,
    resolve_currency,
)
from sources.shared.cursor import OverlapCursor
from sources.shared.model import CANONICAL_STATUSES, column_names, total_mismatch
from sources.shared.values import ValueProblem

P, A = "fohlio", "studio"


def list_client() -> dict[str, Any]:
    """The embedded client as the list endpoint shows it: `categories[]` and `priority` flags."""
    return {
        "id": 501,
        "name": "Harbor Hotels",
        "data": {"currency": "eur", "tax_id": "TX1234"},
        "addresses": [
            {"id": 1, "name": "Site", "country": "CA", "priority": False},
            {"id": 2, "name": "Office", "country": "US", "priority": True},
        ],
        "people": [
            {"id": 1, "name": "Front desk", "email": "hello@harbor.example", "priority": False},
            {"id": 2, "name": "Ana", "email": "accounts@harbor.example", "priority": True},
        ],
        "categories": [{"id": 100, "type": "client"}],
    }


def single_client() -> dict[str, Any]:
    """The embedded client as the single GET shows it: one `category`, no priority flags."""
    client = list_client()
    del client["categories"]
    client["category"] = {"id": 100, "type": "client"}
    for entry in client["addresses"] + client["people"]:
        del entry["priority"]
    return client


def invoice(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": 30001,
        "project_id": 9001,
        "status": "paid_partially",
        "invoice_date": "2024-07-12",
        "note": "Deposit due on approval.",
        "payment_terms": [
            {"id": "pt-2", "amount": "500.10", "due_date": "2024-08-11", "payment_terms": "Net 30"},
            {"id": "pt-1", "amount": "580.00", "due_date": "2024-07-27", "payment_terms": "Net 15"},
        ],
        "label": "INV-00001",
        "created_at": "2024-07-12T09:30:00Z",
        "updated_at": "2024-07-20T10:00:00Z",
        "tax_amount": Decimal("80.10"),
        "taxable_amount": Decimal("1000.00"),
        "amount": Decimal("1000.00"),
        "amount_with_tax": Decimal("1080.10"),
        "balance": Decimal("500.10"),
        "retainer_amount": Decimal("0.00"),
        "products_amount": Decimal("1000.00"),
        "services_amount": Decimal("0.00"),
        "balance_transactions_amount": Decimal("580.00"),
        "client": list_client(),
        "items": [
            {
                "id": 70001,
                "name": "Lounge chair",
                "description": "Walnut frame",
                "unit_type": "ea",
                "quantity": 2,
                "price": Decimal("300.25"),
                "taxable": True,
                "second_taxable": False,
                "project_item_id": 40001,
            },
            {
                "id": 70002,
                "name": "Drapery",
                "description": "Linen",
                "unit_type": "yd",
                "quantity": Decimal("2.5"),
                "price": Decimal("159.80"),
                "taxable": False,
                "second_taxable": True,
                "project_item_id": 40002,
            },
        ],
        "client_proposal_id": None,
        "purchase_order_ids": [60001],
    }
    body.update(overrides)
    return body


def mapped(**overrides: Any) -> Any:
    return map_invoice(invoice(**overrides), provider=P, account=A, currency="EUR")


def test_invoice_row_follows_the_contract() -> None:
    result = mapped()
    row = result.invoice
    # deleted_at is set after the load; raw and _mapping_inputs by the driver (the text as sent).
    assert set(row) == set(column_names("invoices")) - {"deleted_at", "raw", "_mapping_inputs"}
    assert row["provider"] == P and row["account"] == A
    assert row["invoice_id"] == "30001"
    assert (row["client_id"], row["client_name"]) == ("501", "Harbor Hotels")
    assert row["number"] == "INV-00001"
    assert row["document_type"] == "invoice"
    assert (row["status"], row["provider_status"]) == ("partially_paid", "paid_partially")
    assert row["is_archived"] is False
    assert row["issue_date"] == dt.date(2024, 7, 12)
    assert row["currency"] == "EUR"
    assert row["subtotal"] == Decimal("1000.00")
    assert row["tax_total"] == Decimal("80.10")
    assert row["total"] == Decimal("1080.10")
    assert row["balance_due"] == Decimal("500.10")
    assert (row["discount_total"], row["withholding_total"], row["shipping_total"]) == (0, 0, 0)
    assert row["created_at"] == dt.datetime(2024, 7, 12, 9, 30, tzinfo=dt.UTC)
    assert row["updated_at"] == dt.datetime(2024, 7, 20, 10, 0, tzinfo=dt.UTC)
    assert (row["paid_at"], row["voided_at"], row["reference"]) == (None, None, None)
    assert row["notes"] == "Deposit due on approval."
    assert not total_mismatch(row)


@pytest.mark.parametrize(
    ("word", "canonical"),
    [
        ("draft", "draft"),
        ("sent", "open"),
        ("overdue", "open"),
        ("paid_partially", "partially_paid"),
        ("paid", "paid"),
        ("deposited", "paid"),
        ("void", "void"),
        ("revised", "void"),
    ],
)
def test_every_documented_status_maps_as_the_contract_says(word: str, canonical: str) -> None:
    row = mapped(status=word).invoice
    assert (row["status"], row["provider_status"]) == (canonical, word)
    assert row["status"] in CANONICAL_STATUSES


def test_status_map_covers_exactly_the_documented_enum() -> None:
    documented = {"draft", "sent", "paid", "overdue", "deposited", "void", "paid_partially", "revised"}
    assert set(STATUS_MAP) == documented


def test_an_unknown_status_is_reported_not_guessed() -> None:
    with pytest.raises(ValueProblem, match="archived"):
        mapped(status="archived")


def test_the_input_is_not_mutated() -> None:
    source = invoice()
    before = copy.deepcopy(source)
    map_invoice(source, provider=P, account=A, currency="EUR")
    assert source == before


def test_due_date_is_the_earliest_payment_term_whatever_their_order() -> None:
    assert mapped().invoice["due_date"] == dt.date(2024, 7, 27)
    assert due_date([{"amount": "1.00", "due_date": None}, {"amount": "2.00", "due_date": "2024-01-05"}]) == dt.date(
        2024, 1, 5
    )


def test_no_payment_terms_means_no_due_date() -> None:
    assert mapped(payment_terms=[]).invoice["due_date"] is None
    assert mapped(payment_terms=None).invoice["due_date"] is None


def test_an_unreadable_term_date_is_reported() -> None:
    with pytest.raises(ValueProblem, match="due_date"):
        mapped(payment_terms=[{"id": "x", "amount": "1.00", "due_date": "next friday"}])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-07-12", dt.date(2024, 7, 12)),
        ("2024-07-12T00:00:00Z", dt.date(2024, 7, 12)),
        ("2024-07-12T00:00:00-05:00", dt.date(2024, 7, 12)),
        ("2024-07-12T23:30:00-05:00", dt.date(2024, 7, 12)),
        (None, None),
    ],
)
def test_invoice_date_accepts_dates_and_timestamps(value: str | None, expected: dt.date | None) -> None:
    assert mapped(invoice_date=value).invoice["issue_date"] == expected


def test_an_unreadable_invoice_date_is_reported() -> None:
    with pytest.raises(ValueProblem, match="invoice_date"):
        mapped(invoice_date="12/07/2024")


def test_an_empty_label_is_no_number() -> None:
    assert mapped(label="").invoice["number"] is None


def test_lines_map_name_unit_price_and_subtotal_exactly() -> None:
    items = mapped().items
    assert [i["line_number"] for i in items] == [1, 2]
    first, second = items
    assert set(first) == set(column_names("invoice_items")) - {"_tombstone", "raw"}
    assert (first["item_id"], first["name"], first["description"], first["unit"]) == (
        "70001",
        "Lounge chair",
        "Walnut frame",
        "ea",
    )
    assert (first["quantity"], first["unit_price"], first["subtotal"]) == (
        2,
        Decimal("300.25"),
        Decimal("600.50"),
    )
    assert second["subtotal"] == Decimal("399.500")
    assert (first["tax_rate"], first["tax_amount"], first["total"], first["discount_amount"]) == (
        None,
        None,
        None,
        0,
    )


def test_a_line_without_price_has_no_subtotal() -> None:
    items = [{"id": 1, "name": "Sample", "quantity": 1, "price": None}]
    assert mapped(items=items).items[0]["subtotal"] is None


def test_a_float_amount_is_refused() -> None:
    with pytest.raises(ValueProblem, match="float"):
        mapped(amount=1000.0)


def test_mismatched_figures_are_detected() -> None:
    row = mapped(amount_with_tax=Decimal("1090.10")).invoice
    assert row["total"] == Decimal("1090.10")
    assert total_mismatch(row)


def test_client_categories_accept_both_shapes() -> None:
    assert client_categories(list_client()) == ["client"]
    assert client_categories(single_client()) == ["client"]
    assert client_categories({"categories": [{"type": "supplier"}, {"type": "client"}]}) == [
        "supplier",
        "client",
    ]
    assert client_categories({"id": 1}) == []


def test_single_invoice_shape_maps_like_the_list_shape() -> None:
    from_list = mapped().invoice
    from_single = mapped(client=single_client()).invoice
    keep = set(from_list) - {"raw"}
    assert {k: from_list[k] for k in keep} == {k: from_single[k] for k in keep}


def test_client_row_prefers_priority_contacts_and_reads_tax_id() -> None:
    row = map_client(list_client(), provider=P, account=A)
    assert set(row) == set(column_names("clients")) - {"deleted_at", "raw", "_mapping_inputs"}
    assert (row["client_id"], row["name"]) == ("501", "Harbor Hotels")
    assert row["email"] == "accounts@harbor.example"
    assert row["country"] == "US"
    assert row["tax_id"] == "TX1234"
    assert (row["created_at"], row["updated_at"]) == (None, None)


def test_client_row_without_priority_takes_the_first_entries() -> None:
    row = map_client(single_client(), provider=P, account=A)
    assert (row["email"], row["country"]) == ("hello@harbor.example", "CA")


def test_currency_codes_are_normalised_or_refused() -> None:
    assert currency_code("eur", field="c") == "EUR"
    assert currency_code({"id": 2, "iso_code": "GBP", "name": "British Pound"}, field="c") == "GBP"
    assert currency_code(None, field="c") is None
    assert currency_code("", field="c") is None
    with pytest.raises(ValueProblem, match="ISO 4217"):
        currency_code("Euro", field="c")


def test_project_currencies_keep_only_enabled_ones() -> None:
    team = {
        "projects": [
            {"id": 9001, "project_currency": {"enabled": True, "currency": {"id": 3, "iso_code": "GBP"}}},
            {"id": 9002, "project_currency": {"enabled": False, "currency": {"id": 2, "iso_code": "EUR"}}},
            {"id": 9003, "project_currency": {"enabled": True, "currency": None}},
            {"id": 9004},
        ]
    }
    assert project_currencies(team) == {"9001": "GBP"}
    assert project_currencies(None) == {}


def test_currency_comes_from_project_then_client_then_configuration() -> None:
    inv = invoice()
    assert resolve_currency(inv, {"9001": "GBP"}, "USD") == "GBP"
    assert resolve_currency(inv, {"9999": "GBP"}, "USD") == "EUR"
    no_client_currency = invoice(client={**list_client(), "data": {}})
    assert resolve_currency(no_client_currency, {}, "USD") == "USD"
    with pytest.raises(ValueProblem, match="currency unknown"):
        resolve_currency(no_client_currency, {}, None)
    with pytest.raises(ValueProblem, match=r"client\.data\.currency"):
        resolve_currency(invoice(client={**list_client(), "data": {"currency": "Euro"}}), {}, "USD")


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def test_overlap_cursor_first_run_asks_for_everything() -> None:
    cursor = OverlapCursor({}, "invoices", dt.timedelta(minutes=10))
    assert cursor.since is None
    assert cursor.is_changed("1", ts("2024-07-01T00:00:00"))


def test_overlap_cursor_asks_from_the_mark_minus_the_overlap() -> None:
    state: dict[str, Any] = {}
    cursor = OverlapCursor(state, "invoices", dt.timedelta(minutes=10))
    cursor.observe("1", ts("2024-07-01T12:00:00"))
    cursor.observe("2", ts("2024-07-01T11:55:00"))
    cursor.observe("3", ts("2024-06-01T00:00:00"))
    cursor.commit()
    again = OverlapCursor(state, "invoices", dt.timedelta(minutes=10))
    assert again.since == int(ts("2024-07-01T11:50:00").timestamp())
    # seen before at the same timestamp: not rewritten, inside or outside the window
    assert not again.is_changed("1", ts("2024-07-01T12:00:00"))
    assert not again.is_changed("2", ts("2024-07-01T11:55:00"))
    assert not again.is_changed("3", ts("2024-06-01T00:00:00"))
    # newer than the mark
    assert again.is_changed("3", ts("2024-07-01T12:00:01"))
    # a change committed late, below the mark but inside the window, is not missed
    assert again.is_changed("2", ts("2024-07-01T11:58:00"))
    assert again.is_changed("4", ts("2024-07-01T11:52:00"))
    # a record older than the window was loaded by an earlier run
    assert not again.is_changed("5", ts("2024-07-01T11:00:00"))


def test_overlap_cursor_window_follows_the_mark() -> None:
    state: dict[str, Any] = {}
    first = OverlapCursor(state, "invoices", dt.timedelta(minutes=10))
    first.observe("1", ts("2024-07-01T12:00:00"))
    first.commit()
    second = OverlapCursor(state, "invoices", dt.timedelta(minutes=10))
    second.observe("1", ts("2024-07-01T12:00:00"))
    second.observe("2", ts("2024-07-02T08:00:00"))
    second.commit()
    assert state["invoices:window"] == {"2": ts("2024-07-02T08:00:00").isoformat()}
    third = OverlapCursor(state, "invoices", dt.timedelta(minutes=10))
    assert third.since == int(ts("2024-07-02T07:50:00").timestamp())
    assert not third.is_changed("2", ts("2024-07-02T08:00:00"))


@pytest.mark.parametrize("key", ["amount", "tax_amount", "amount_with_tax"])
@pytest.mark.parametrize("trim", ["null", "absent"])
def test_a_missing_figure_makes_the_invoice_unmappable_naming_it(key: str, trim: str) -> None:
    body = invoice()
    if trim == "null":
        body[key] = None
    else:
        del body[key]
    with pytest.raises(ValueProblem, match=f"^{key}: missing or null$"):
        map_invoice(body, provider=P, account=A, currency="EUR")


def test_currency_codes_must_be_on_the_iso_list() -> None:
    for false_code in ("ESC", "LEI", "XYZ"):
        with pytest.raises(ValueProblem, match=f"'{false_code}' is not a code of the ISO 4217 list"):
            currency_code(false_code, field="client.data.currency")
        with pytest.raises(ValueProblem, match="configured currency"):
            resolve_currency(invoice(client={**list_client(), "data": {}}), {}, false_code)
    assert currency_code({"iso_code": "hrk"}, field="c") == "HRK"  # withdrawn, still ISO 4217


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": "Unauthorized"}, "Unauthorized"),
        ({"message": "Invalid token"}, "Invalid token"),
        ({"errors": ["Project not found"]}, "Project not found"),
        ({"errors": [{"message": "per_page must be at most 100"}]}, "per_page must be at most 100"),
        ({"error": "Unauthorized", "message": "Unauthorized"}, "Unauthorized"),
        ([{"id": 1}], None),
        ([], None),
        ({"id": 1, "name": "an invoice"}, None),
        (None, None),
    ],
)
def test_error_bodies_give_the_apis_own_words(body: Any, message: str | None) -> None:
    assert error_message(body) == message
