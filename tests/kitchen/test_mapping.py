"""Kitchen mapping: every quirk, on the documented sample and variations of it (no HTTP)."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sources.kitchen import mapping
from sources.shared.model import CANONICAL_STATUSES, column_names, total_mismatch
from sources.shared.values import ValueProblem, loads

SAMPLES = Path(__file__).parents[2] / "sandbox" / "kitchen" / "samples"


def published(name: str) -> Any:
    """A published sample body (sandbox/kitchen/samples/README.md), numbers decoded exactly."""
    return loads((SAMPLES / name).read_text(encoding="utf-8"))


# The invoice of the documented "List all invoices" page (developer.kitchen.co), as the API writes it.
[SAMPLE] = published("list_invoices.json")["data"]

CLIENT = """{"id": "u_62988d0392da49247a831d35", "created_at": "2024-01-05T10:00:00+00:00",
 "updated_at": "2024-02-01T08:30:00+00:00", "email": "jane@example.com", "group": "client",
 "language": "en_US", "name": "Jane Client", "phone": null, "role": "member", "timezone": "UTC",
 "title": null, "username": "jane"}"""

NAMES = {"u_62988d0392da49247a831d35": "Jane Client"}


def sample(**changes: Any) -> dict[str, Any]:
    invoice = copy.deepcopy(SAMPLE)
    invoice.update(changes)
    return invoice


def test_sample_invoice_maps_to_every_canonical_column() -> None:
    mapped = mapping.map_invoice(sample(), "acme", NAMES)
    row = mapped.invoice
    # deleted_at is set after the load; raw and _mapping_inputs by the driver (the text as sent).
    assert set(row) == set(column_names("invoices")) - {"deleted_at", "raw", "_mapping_inputs"}
    assert row["provider"] == "kitchen" and row["account"] == "acme"
    assert row["invoice_id"] == "in_31d435a7f94fd8d87c36ecfd"
    assert row["client_id"] == "u_62988d0392da49247a831d35"
    assert row["client_name"] == "Jane Client"
    assert row["number"] == "PREFIX-00018"
    assert row["document_type"] == "invoice"
    assert (row["status"], row["provider_status"]) == ("paid", "paid")
    assert row["is_archived"] is False
    assert row["issue_date"] == dt.date(2024, 7, 12)
    assert row["due_date"] == dt.date(2024, 7, 20)
    assert row["currency"] == "USD"
    assert row["discount_total"] == Decimal("341.47")
    assert row["shipping_total"] == Decimal("19.99")
    assert row["withholding_total"] == 0
    assert row["total"] == Decimal("508.9")
    assert row["balance_due"] == 0
    assert row["created_at"] == dt.datetime(2024, 3, 13, 9, 16, 53, tzinfo=dt.UTC)
    assert row["updated_at"] == dt.datetime(2024, 3, 13, 9, 16, 53, tzinfo=dt.UTC)
    assert row["paid_at"] is None and row["voided_at"] is None
    assert row["reference"] is None and row["notes"] is None


def test_without_tax_amount_the_tax_items_are_not_added_up() -> None:
    # The stored capture of the page (seed 003) lost `tax_amount`: its tax_items[] (46.3, a rate) is
    # no substitute for 154.73, so the invoice is unmappable with a reason naming the field.
    for invoice in (sample(tax_amount=None), {k: v for k, v in sample().items() if k != "tax_amount"}):
        with pytest.raises(ValueProblem, match=r"^tax_amount: missing or null, and tax_items\[\] holds rates"):
            mapping.map_invoice(invoice, "acme", NAMES)


def test_without_discount_amount_the_discounts_are_not_added_up() -> None:
    with pytest.raises(ValueProblem, match=r"^discount_amount: missing or null, and discounts\[\] holds rates"):
        mapping.map_invoice(sample(discount_amount=None), "acme", NAMES)


@pytest.mark.parametrize("key", ["tax_amount", "discount_amount"])
def test_without_a_total_nor_its_list_the_invoice_is_unmappable(key: str) -> None:
    invoice = sample()
    del invoice[key]
    del invoice["tax_items" if key == "tax_amount" else "discounts"]
    with pytest.raises(ValueProblem, match=f"^{key}: missing or null"):
        mapping.map_invoice(invoice, "acme", NAMES)


def without(invoice: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in invoice.items() if k not in keys}


def test_an_absent_shipping_amount_is_0_when_the_invoices_own_figures_add_up() -> None:
    # docs/canonical-model.md: amount − discount_amount + tax_amount = total_amount exactly proves no shipping.
    invoice = without(sample(total_amount=Decimal("488.91")), "shipping_amount")
    row = mapping.map_invoice(invoice, "acme", NAMES).invoice
    assert row["shipping_total"] == 0 and row["total"] == Decimal("488.91")
    assert row["subtotal"] == Decimal("334.18") == Decimal("675.65") - Decimal("341.47")
    assert not total_mismatch(row)


def test_an_absent_shipping_amount_whose_figures_do_not_add_up_stays_unmapped() -> None:
    invoice = without(sample(), "shipping_amount")  # 675.65 − 341.47 + 154.73 = 488.91, total_amount 508.9
    with pytest.raises(ValueProblem) as problem:
        mapping.map_invoice(invoice, "acme", NAMES)
    assert str(problem.value) == (
        "shipping_amount: missing, and amount − discount_amount + tax_amount = 488.91, not total_amount 508.9,"
        " so 0 is not proven (subtotal = total_amount − tax_amount − shipping_amount cannot be derived)"
    )


@pytest.mark.parametrize("value", [None, ""])
def test_a_null_shipping_amount_is_never_read_as_zero_even_when_the_figures_add_up(value: Any) -> None:
    # Only an absent key is what Kitchen writes without shipping (sources/kitchen/README.md).
    with pytest.raises(ValueProblem, match=r"^shipping_amount: null or empty; only an absent one is proven 0"):
        mapping.map_invoice(sample(shipping_amount=value, total_amount=Decimal("488.91")), "acme", NAMES)


@pytest.mark.parametrize("value", [None, "absent"])
def test_without_amount_an_absent_shipping_amount_cannot_be_proven_0(value: Any) -> None:
    invoice = without(sample(amount=value, total_amount=Decimal("488.91")), "shipping_amount")
    if value == "absent":
        del invoice["amount"]
    with pytest.raises(ValueProblem, match=r"^shipping_amount: missing, and amount is missing or null, so 0 cannot"):
        mapping.map_invoice(invoice, "acme", NAMES)


def test_the_proof_reads_tax_and_discount_by_their_own_rules() -> None:
    # An empty list is an exact 0 (docs/providers.md §3.7), so it takes part in the proof ...
    bare = without(sample(discounts=[], tax_items=[], total_amount=Decimal("675.65")), "shipping_amount")
    row = mapping.map_invoice(without(bare, "discount_amount", "tax_amount"), "a", {}).invoice
    assert (row["discount_total"], row["tax_total"], row["shipping_total"]) == (0, 0, 0)
    assert row["subtotal"] == Decimal("675.65")
    # ... while a missing total beside listed items is unmapped for that reason, before shipping is looked at.
    listed = without(sample(total_amount=Decimal("488.91")), "shipping_amount", "tax_amount")
    with pytest.raises(ValueProblem, match=r"^tax_amount: missing or null, and tax_items\[\] holds rates"):
        mapping.map_invoice(listed, "a", {})
    listed = without(sample(total_amount=Decimal("488.91")), "shipping_amount", "discount_amount")
    with pytest.raises(ValueProblem, match=r"^discount_amount: missing or null, and discounts\[\] holds rates"):
        mapping.map_invoice(listed, "a", {})


def test_subtotal_is_total_minus_tax_minus_shipping() -> None:
    row = mapping.map_invoice(
        sample(total_amount=Decimal("1230.00"), tax_amount=Decimal("200.00"), shipping_amount=Decimal("30.00")),
        "acme",
        NAMES,
    ).invoice
    assert row["subtotal"] == Decimal("1000.00")
    assert row["tax_total"] == Decimal("200.00")
    assert row["total"] == row["subtotal"] + row["tax_total"] + row["shipping_total"] - row["withholding_total"]


def test_explicit_tax_and_discount_amounts_win_over_their_items() -> None:
    row = mapping.map_invoice(sample(tax_amount=Decimal("10.00"), discount_amount=Decimal("5.00")), "a", {}).invoice
    assert row["tax_total"] == Decimal("10.00")
    assert row["discount_total"] == Decimal("5.00")


def test_no_tax_or_discount_items_at_all_means_zero_exactly() -> None:
    invoice = sample(discounts=[], tax_items=[], shipping_amount=Decimal("0.00"))
    for key in ("discount_amount", "tax_amount"):
        invoice.pop(key)
    row = mapping.map_invoice(invoice, "a", {}).invoice
    assert row["discount_total"] == 0 and row["shipping_total"] == 0 and row["tax_total"] == 0
    assert row["subtotal"] == Decimal("508.9")


def test_line_amount_is_per_unit_and_quantity_is_a_string() -> None:
    invoice = sample(
        items=[
            {
                "amount": Decimal("150.00"),
                "id": "invi_1",
                "quantity": "2.50",
                "title": "Design",
                "description": None,
            },
            {
                "amount": Decimal("19.99"),
                "id": "invi_2",
                "quantity": "3",
                "title": "Hosting",
                "description": "x",
            },
        ]
    )
    lines = mapping.map_invoice(invoice, "acme", NAMES).items
    assert [line["line_number"] for line in lines] == [1, 2]
    first, second = lines
    assert set(first) == set(column_names("invoice_items")) - {"_tombstone", "raw"}
    assert first["quantity"] == Decimal("2.50")
    assert first["unit_price"] == Decimal("150.00")
    assert first["subtotal"] == Decimal("375.0000")
    assert second["subtotal"] == Decimal("59.97")
    assert (first["item_id"], first["name"], first["description"]) == ("invi_1", "Design", None)
    assert (first["unit"], first["tax_rate"], first["tax_amount"], first["total"]) == (None, None, None, None)
    assert first["discount_amount"] == 0
    assert first["invoice_id"] == "in_31d435a7f94fd8d87c36ecfd"


def test_sample_line() -> None:
    (line,) = mapping.map_invoice(sample(), "acme", NAMES).items
    assert line["quantity"] == Decimal("1.00")
    assert line["unit_price"] == Decimal("675.65")
    assert line["subtotal"] == Decimal("675.65")
    assert line["name"] == "The invoice item title"


def test_invoice_without_items_has_no_lines() -> None:
    assert mapping.map_invoice(sample(items=[]), "acme", NAMES).items == []


@pytest.mark.parametrize("bad", [{"quantity": None}, {"quantity": "two"}, {"amount": None}, {"amount": 1.5}])
def test_unreadable_line_is_a_value_problem(bad: dict[str, Any]) -> None:
    item = {"amount": Decimal("10.00"), "id": "invi_1", "quantity": "1.00", "title": "t", **bad}
    with pytest.raises(ValueProblem):
        mapping.map_invoice(sample(items=[item]), "acme", NAMES)


@pytest.mark.parametrize(
    ("status", "balance"),
    [
        ("draft", None),
        ("open", Decimal("508.9")),
        ("paid", 0),
        ("void", 0),
        ("uncollectible", Decimal("508.9")),
    ],
)
def test_status_words_and_balance_due(status: str, balance: Decimal | None) -> None:
    row = mapping.map_invoice(sample(status=status), "acme", NAMES).invoice
    assert row["status"] == status and status in CANONICAL_STATUSES
    assert row["provider_status"] == status
    assert row["balance_due"] == balance


def test_status_is_read_case_insensitively_but_kept_as_sent() -> None:
    row = mapping.map_invoice(sample(status="Open"), "acme", NAMES).invoice
    assert (row["status"], row["provider_status"]) == ("open", "Open")


@pytest.mark.parametrize("status", ["refunded", None, ""])
def test_unknown_status_is_reported_not_guessed(status: Any) -> None:
    with pytest.raises(ValueProblem, match="status"):
        mapping.map_invoice(sample(status=status), "acme", NAMES)


def test_archived_at_sets_is_archived() -> None:
    row = mapping.map_invoice(sample(archived_at="2024-04-01T10:00:00+00:00"), "acme", NAMES).invoice
    assert row["is_archived"] is True


def test_invoice_without_client_has_no_client_name() -> None:
    row = mapping.map_invoice(sample(client=None), "acme", NAMES).invoice
    assert row["client_id"] is None and row["client_name"] is None


def test_client_missing_from_the_clients_list_keeps_its_id() -> None:
    row = mapping.map_invoice(sample(client="u_ffffffffffffffffffffffff"), "acme", NAMES).invoice
    assert row["client_id"] == "u_ffffffffffffffffffffffff" and row["client_name"] is None


def test_dates_keep_the_calendar_day_of_their_own_offset() -> None:
    row = mapping.map_invoice(
        sample(issue_date="2024-07-12T00:00:00+02:00", due_date="2024-07-20T23:59:59-05:00"), "a", {}
    ).invoice
    assert row["issue_date"] == dt.date(2024, 7, 12)
    assert row["due_date"] == dt.date(2024, 7, 20)


def test_lifecycle_timestamps_are_utc() -> None:
    row = mapping.map_invoice(
        sample(paid_at="2024-07-13T10:00:00+02:00", voided_at="2024-07-14T10:00:00+00:00"), "a", {}
    ).invoice
    assert row["paid_at"] == dt.datetime(2024, 7, 13, 8, 0, tzinfo=dt.UTC)
    assert row["voided_at"] == dt.datetime(2024, 7, 14, 10, 0, tzinfo=dt.UTC)


def test_memo_is_the_note_and_number_may_be_null() -> None:
    row = mapping.map_invoice(sample(memo="Thanks", number=None, status="draft"), "a", {}).invoice
    assert row["notes"] == "Thanks" and row["number"] is None


def test_currency_is_upper_cased_and_checked() -> None:
    assert mapping.map_invoice(sample(currency="eur"), "a", {}).invoice["currency"] == "EUR"
    with pytest.raises(ValueProblem, match="currency"):
        mapping.map_invoice(sample(currency="Euro"), "a", {})
    with pytest.raises(ValueProblem, match="currency"):
        mapping.map_invoice(sample(currency=None), "a", {})
    # Three letters are not enough: the code must be on the ISO 4217 list.
    for false_code in ("ESC", "LEI", "XYZ"):
        with pytest.raises(ValueProblem, match=f"currency: '{false_code}' is not a code of the ISO 4217 list"):
            mapping.map_invoice(sample(currency=false_code), "a", {})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": "Unauthenticated."}, "Unauthenticated."),
        ({"message": "Server Error"}, "Server Error"),
        ({"error": {"message": "Workspace not found"}}, "Workspace not found"),
        (
            {"message": "The given data was invalid.", "errors": {"currency": ["The currency field is required."]}},
            "The given data was invalid.; currency: The currency field is required.",
        ),
        ({"data": [], "links": {}, "meta": {}}, None),
        ({"message": ""}, None),
        ([], None),
        (None, None),
    ],
)
def test_error_bodies_give_the_apis_own_words(body: Any, message: str | None) -> None:
    assert mapping.error_message(body) == message


def test_missing_total_or_id_is_a_value_problem() -> None:
    with pytest.raises(ValueProblem, match="total_amount"):
        mapping.map_invoice(sample(total_amount=None), "a", {})
    with pytest.raises(ValueProblem, match="id"):
        mapping.map_invoice(sample(id=None), "a", {})


def test_unreadable_date_is_a_value_problem() -> None:
    with pytest.raises(ValueProblem, match="issue_date"):
        mapping.map_invoice(sample(issue_date="12/07/2024"), "a", {})


def test_money_is_exact_and_the_record_is_untouched() -> None:
    invoice = sample()
    before = copy.deepcopy(invoice)
    mapped = mapping.map_invoice(invoice, "acme", NAMES)
    assert invoice == before
    assert isinstance(mapped.invoice["total"], Decimal)


def test_a_float_never_reaches_money() -> None:
    with pytest.raises(ValueProblem, match="float"):
        mapping.map_invoice(sample(total_amount=508.9), "a", {})


def test_document_type_is_snake_case() -> None:
    assert mapping.map_invoice(sample(type="CreditNote"), "a", {}).invoice["document_type"] == "credit_note"
    assert mapping.map_invoice(sample(type=None), "a", {}).invoice["document_type"] == "invoice"


def test_client_row_and_names() -> None:
    client = loads(CLIENT)
    row = mapping.map_client(client, "acme")
    assert set(row) == set(column_names("clients")) - {"deleted_at", "raw", "_mapping_inputs"}
    assert (row["provider"], row["account"], row["client_id"]) == (
        "kitchen",
        "acme",
        "u_62988d0392da49247a831d35",
    )
    assert (row["name"], row["email"], row["country"], row["tax_id"]) == (
        "Jane Client",
        "jane@example.com",
        None,
        None,
    )
    assert row["created_at"] == dt.datetime(2024, 1, 5, 10, 0, tzinfo=dt.UTC)
    assert mapping.client_names([client, {"id": "u_2", "name": None}]) == {
        "u_62988d0392da49247a831d35": "Jane Client",
        "u_2": None,
    }
    with pytest.raises(ValueProblem):
        mapping.map_client({"name": "no id"}, "acme")


def test_updated_at_is_the_cursor_value() -> None:
    assert mapping.invoice_updated_at(sample()) == dt.datetime(2024, 3, 13, 9, 16, 53, tzinfo=dt.UTC)
    assert mapping.invoice_updated_at(sample(updated_at=None)) is None
