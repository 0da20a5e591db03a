import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from sources.invoicexpress.currencies import CURRENCIES
from sources.invoicexpress.mapping import (
    canonical_status,
    currency_code,
    error_message,
    map_client,
    map_invoice,
    snake_case,
)
from sources.shared.currency import iso_4217
from sources.shared.model import total_mismatch
from sources.shared.values import ValueProblem, loads

SAMPLES = Path(__file__).parents[2] / "sandbox" / "invoicexpress" / "samples"


def sample(name):
    """A published sample body (sandbox/invoicexpress/samples/README.md), numbers decoded exactly."""
    return loads((SAMPLES / name).read_text(encoding="utf-8"))


# The documented list item (seeds 000/001), as the published file writes it: numbers decode exactly.
[DOC_EXAMPLE] = sample("list_client_invoices.json")["invoices"]


def test_the_documented_example_maps_exactly():
    mapped = map_invoice(DOC_EXAMPLE, "acme")
    row = mapped.invoice
    assert not total_mismatch(row)
    assert row["provider"] == "invoicexpress" and row["account"] == "acme"
    assert row["invoice_id"] == "541793" and row["client_id"] == "1310176" and row["client_name"] == "John"
    assert row["number"] == "28/A" and row["document_type"] == "invoice"
    assert row["status"] == "open" and row["provider_status"] == "final" and row["is_archived"] is True
    assert row["issue_date"] == dt.date(2017, 6, 27) and row["due_date"] == dt.date(2017, 6, 27)
    assert row["currency"] == "EUR"
    assert row["subtotal"] == Decimal("1") and row["tax_total"] == Decimal("0.07")
    assert row["total"] == Decimal("1.07") and row["withholding_total"] == Decimal("0.00")
    assert row["discount_total"] == 0 and row["shipping_total"] == 0
    assert row["balance_due"] == Decimal("1.07")
    assert row["created_at"] is None and row["updated_at"] is None
    assert row["reference"] == "foo" and row["notes"] == "foo"
    [item] = mapped.items
    assert item["line_number"] == 1 and item["item_id"] is None
    assert item["quantity"] == Decimal("1.0") and item["unit_price"] == Decimal("1.0")
    assert item["tax_rate"] == Decimal(7) and item["tax_amount"] == Decimal("0.07")
    assert item["subtotal"] == Decimal(1) and item["total"] == Decimal("1.07") and item["discount_amount"] == 0


def doc(**changes):
    return {**DOC_EXAMPLE, **changes}


def test_amounts_sent_as_strings_are_read_exactly():
    mapped = map_invoice(doc(before_taxes="100.10", taxes="23.02", total="123.12", discount="0.00"), "a")
    assert mapped.invoice["subtotal"] == Decimal("100.10") and mapped.invoice["total"] == Decimal("123.12")


def test_a_float_never_reaches_the_money_columns():
    with pytest.raises(ValueProblem):
        map_invoice(doc(total=1.07), "a")


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), (1, True), (0, False), ("1", True)])
def test_archived_as_boolean_or_one_zero(value, expected):
    assert map_invoice(doc(archived=value), "a").invoice["is_archived"] is expected


@pytest.mark.parametrize("draft_number", ["draft", "rascunho", "Rascunho", ""])
def test_drafts_have_no_number_and_no_balance(draft_number):
    row = map_invoice(doc(status="draft", sequence_number=draft_number), "a").invoice
    assert row["number"] is None and row["status"] == "draft" and row["balance_due"] is None


def test_withholding_is_before_taxes_plus_taxes_minus_total():
    # The legacy XML fixture (docs/providers.md §1.4): before_taxes 100, taxes 23, retention 5.0 → total 118.
    mapped = map_invoice(
        doc(before_taxes=Decimal(100), taxes=Decimal(23), total=Decimal("118.0"), retention="5.0"), "a"
    )
    assert not total_mismatch(mapped.invoice)
    row = mapped.invoice
    assert row["withholding_total"] == Decimal("5.0")
    assert row["subtotal"] + row["tax_total"] + row["shipping_total"] - row["withholding_total"] == row["total"]


def test_withholding_follows_the_figures_not_the_retention_rate():
    # docs/canonical-model.md: withholding_total = before_taxes + taxes − total, whatever `retention` says.
    mapped = map_invoice(
        doc(before_taxes=Decimal(100), taxes=Decimal(23), total=Decimal("120.00"), retention="0.0"), "a"
    )
    assert mapped.invoice["withholding_total"] == Decimal("3.00") and not total_mismatch(mapped.invoice)
    # A rate of 25 % on figures that withhold nothing (total = before_taxes + taxes): no 250.00 is invented.
    mapped = map_invoice(
        doc(before_taxes=Decimal("1000.0"), taxes=Decimal("230.0"), total=Decimal("1230.0"), retention="25.0"), "a"
    )
    assert mapped.invoice["withholding_total"] == 0 and not total_mismatch(mapped.invoice)


def test_a_total_above_before_taxes_plus_taxes_is_a_mismatch_not_a_negative_withholding():
    mapped = map_invoice(doc(before_taxes=Decimal(100), taxes=Decimal(23), total=Decimal("135.30")), "a")
    row = mapped.invoice
    assert row["withholding_total"] == 0 and row["total"] == Decimal("135.30")
    assert total_mismatch(row)


@pytest.mark.parametrize("field", ["before_taxes", "taxes", "total"])
@pytest.mark.parametrize("trim", ["missing", "null", "empty"])
def test_a_document_without_one_of_its_figures_is_unmappable_naming_the_field(field, trim):
    # A trimmed capture: no figure is derived from a missing one (docs/canonical-model.md).
    sample = dict(DOC_EXAMPLE)
    if trim == "missing":
        del sample[field]
    else:
        sample[field] = None if trim == "null" else ""
    with pytest.raises(ValueProblem, match=f"^{field}: missing"):
        map_invoice(sample, "a")


@pytest.mark.parametrize(
    ("status", "canonical", "balance"),
    [
        ("final", "open", "1.07"),
        ("sent", "open", "1.07"),
        ("second_copy", "open", "1.07"),
        ("settled", "paid", "0"),
        ("canceled", "void", "0"),
        ("deleted", "void", "0"),
        ("draft", "draft", None),
    ],
)
def test_status_mapping_and_balance_due(status, canonical, balance):
    row = map_invoice(doc(status=status), "a").invoice
    assert row["status"] == canonical
    assert row["balance_due"] == (None if balance is None else Decimal(balance))


def test_an_unknown_status_is_an_error_not_a_guess():
    with pytest.raises(ValueProblem):
        canonical_status("frozen")


@pytest.mark.parametrize(
    ("type_name", "snake"),
    [
        ("Invoice", "invoice"),
        ("InvoiceReceipt", "invoice_receipt"),
        ("SimplifiedInvoice", "simplified_invoice"),
        ("CreditNote", "credit_note"),
        ("DebitNote", "debit_note"),
        ("CashInvoice", "cash_invoice"),
        ("VatMossInvoice", "vat_moss_invoice"),
        ("Receipt", "receipt"),
    ],
)
def test_document_types_in_snake_case(type_name, snake):
    assert snake_case(type_name) == snake


def test_credit_notes_keep_positive_amounts_and_say_what_they_are():
    row = map_invoice(doc(type="CreditNote"), "a").invoice
    assert row["document_type"] == "credit_note" and row["total"] == Decimal("1.07")
    # The 2013 legacy XML fixture (docs/providers.md §1.4) writes a final credit note's figures positive.
    figures = {"sum": "170.0", "before_taxes": "170.0", "taxes": "0.0", "total": "170.0"}
    legacy = doc(type="CreditNote", retention="", **{k: Decimal(v) for k, v in figures.items()})
    row = map_invoice(legacy, "a").invoice
    assert (row["document_type"], row["subtotal"], row["total"]) == ("credit_note", 170, 170)
    assert row["withholding_total"] == 0 and row["balance_due"] == 170 and not total_mismatch(row)


@pytest.mark.parametrize(
    ("name", "iso"),
    [
        ("Euro", "EUR"),
        ("euro", "EUR"),
        ("US Dollar", "USD"),
        ("Pound Sterling", "GBP"),
        ("U.S. dollar", "USD"),
        ("Polish złoty", "PLN"),
        ("Mexican peso", "MXN"),
        ("Hong Kong dollar", "HKD"),
        ("South African rand", "ZAR"),
        ("Indian rupee", "INR"),
        ("Bosnia & Herzegovina mark", "BAM"),
        ("Uzbekistani so'm", "UZS"),
        ("Tongan paʻanga", "TOP"),
        ("EUR", "EUR"),
        ("usd", "USD"),
        ("€", "EUR"),
        ("Esc", "CVE"),
        ("lei", "RON"),
        ("R$", "BRL"),
    ],
)
def test_currency_names_become_iso_codes(name, iso):
    assert currency_code(name) == iso


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Zorkmid", "'Zorkmid' is neither a known currency name"),
        ("ESC", "'ESC' is neither"),
        ("LEI", "'LEI' is neither"),
        ("XYZ", "'XYZ' is neither"),
        ("Libra esterlina", "'Libra esterlina' is neither"),
        ("$", r"the symbol '\$' is written by several currencies \(USD, ARS, "),
        ("kr", "the symbol 'kr' is written by several currencies"),
        ("KR", "the symbol 'KR' is written by several currencies \\(EEK, ISK, NOK, SEK\\)"),
        ("¤", "the symbol '¤' is written by several currencies"),
        ("", "missing"),
        (None, "missing"),
    ],
)
def test_an_unknown_or_ambiguous_currency_is_an_error_naming_the_value(value, message):
    with pytest.raises(ValueProblem, match=message):
        currency_code(value)
    with pytest.raises(ValueProblem, match=message):
        map_invoice(doc(currency=value), "a")


def test_the_official_currency_table_is_complete_and_every_name_resolves_to_an_iso_code():
    assert len(CURRENCIES) == 157
    assert len({name for name, _, _ in CURRENCIES}) == 157
    for name, _symbol, code in CURRENCIES:
        assert currency_code(name) == code
        assert iso_4217(code) == code


def test_a_symbol_resolves_only_when_one_currency_of_the_table_writes_it():
    writers: dict[str, set[str]] = {}
    for _name, symbol, code in CURRENCIES:
        writers.setdefault(symbol.casefold(), set()).add(code)
    for _name, symbol, code in CURRENCIES:
        if len(writers[symbol.casefold()]) == 1 and symbol.upper() != code:
            assert currency_code(symbol) == code
        else:
            with pytest.raises(ValueProblem, match="several currencies"):
                currency_code(symbol)
    assert len(writers["$"]) == 29


def test_line_numbers_are_positions_and_numbers_as_numbers_are_accepted_too():
    items = [dict(DOC_EXAMPLE["items"][0], quantity=Decimal(2), unit_price=Decimal("3.5")), DOC_EXAMPLE["items"][0]]
    mapped = map_invoice(doc(items=items), "a")
    assert [i["line_number"] for i in mapped.items] == [1, 2]
    assert mapped.items[0]["quantity"] == Decimal(2) and mapped.items[0]["unit_price"] == Decimal("3.5")


def test_the_input_is_not_mutated():
    before = repr(DOC_EXAMPLE)
    map_invoice(DOC_EXAMPLE, "a")
    assert repr(DOC_EXAMPLE) == before


def test_clients_map_with_their_fiscal_id():
    row = map_client({"id": 42, "name": "Acme Lda", "email": "a@b.pt", "country": "Portugal", "fiscal_id": "123"}, "a")
    assert row["client_id"] == "42" and row["tax_id"] == "123" and row["country"] == "Portugal"
    with pytest.raises(ValueProblem):
        map_client({"name": "no id"}, "a")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"errors": {"error": "Invalid API key"}}, "Invalid API key"),
        ({"errors": [{"error": "Client not found"}]}, "Client not found"),
        (
            {"error": {"code": "422", "message": "Some parameters were incorrect."}},
            "422 Some parameters were incorrect.",
        ),
        ({"errors": {"date": ["can't be blank", "is invalid"]}}, "date: can't be blank; date: is invalid"),
        ({"message": "Too many requests"}, "Too many requests"),
        ({"unexpected": 1}, None),
        ([1, 2], None),
        ([], None),
        ("text", None),
    ],
)
def test_every_documented_error_shape_is_read(body, message):
    assert error_message(body) == message
