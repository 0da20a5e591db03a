"""Flow Payroll mapping: date patterns from metadata, status derivation, every column."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from sources.flowpayroll.api import error_message
from sources.flowpayroll.mapping import (
    Formats,
    compile_pattern,
    derive_status,
    formats_from,
    map_client,
    map_invoice,
    parse_date,
    parse_timestamp,
)
from sources.shared.model import total_mismatch
from sources.shared.values import ValueProblem, loads

DOCUMENTED = Formats("yyyy-MM-dd", "yyyy-MM-dd'T'HH:mm:ss.fffZ")
BRITISH = Formats("dd/MM/yyyy", "dd/MM/yyyy HH:mm:ss")
JAVA = Formats("yyyy-MM-dd", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX")
UTC = dt.UTC


def invoice_payload(**changes: Any) -> dict[str, Any]:
    text = """{
      "id": "inv-1", "organisationId": "org-1", "clientId": "cli-1",
      "amount": 1234.56, "lineAmountTypes": "Exclusive", "subTotal": 1028.80, "totalTax": 205.76,
      "totalCreditAmount": 100.00, "balanceDue": 1134.56, "currencyCode": "gbp",
      "appliedCredits": [{"creditNoteId": "cn-1", "amountApplied": 100.00, "appliedDate": "2024-07-20"}],
      "date": "2024-07-12", "dueDate": "2024-08-11", "invoiceNumber": "INV-00042", "reference": "Week 28",
      "attachments": [{"id": "att-1", "fileName": "t.pdf", "s3Key": "a/t.pdf", "fileSize": 10,
                       "downloadUrl": "https://s3.example/a/t.pdf?X-Amz-Signature=abc",
                       "downloadUrlExpiresAt": "2024-07-12T10:15:00.000Z"}],
      "lineItems": [
        {"id": "li-1", "employeeId": "emp-1", "employeeName": "Ava Jones", "description": "Basic Pay",
         "payElementId": "pe-1", "quantity": 37.5, "unitAmount": 20.00, "lineAmount": 750.00,
         "taxAmount": 150.00},
        {"id": "li-2", "description": "Overtime", "quantity": 8, "unitAmount": 34.85, "lineAmount": 278.80,
         "taxAmount": 55.76}
      ],
      "externalProvider": "Xero", "externalProviderStatus": "AUTHORISED", "syncStatus": "Synced",
      "createdDate": "2024-07-12T09:00:00.123Z", "updatedDate": "2024-07-21T16:45:10.500Z"
    }"""
    payload = loads(text)
    payload.update(changes)
    return payload


# --- date patterns ------------------------------------------------------------------------------


def test_documented_pattern_pair() -> None:
    assert parse_date("2024-07-12", DOCUMENTED) == dt.date(2024, 7, 12)
    assert parse_timestamp("2024-07-12T10:20:30.123Z", DOCUMENTED) == dt.datetime(
        2024, 7, 12, 10, 20, 30, 123000, tzinfo=UTC
    )


def test_day_first_pattern_pair_without_offset_is_utc() -> None:
    assert parse_date("03/04/2024", BRITISH) == dt.date(2024, 4, 3)
    assert parse_timestamp("03/04/2024 23:05:09", BRITISH) == dt.datetime(2024, 4, 3, 23, 5, 9, tzinfo=UTC)


def test_java_offset_pattern_converts_to_utc_and_keeps_the_written_day() -> None:
    assert parse_timestamp("2024-07-12T01:30:00.250+02:00", JAVA) == dt.datetime(
        2024, 7, 11, 23, 30, 0, 250000, tzinfo=UTC
    )
    # a date sent as a timestamp keeps the calendar day written in its own offset
    assert parse_date("2024-07-12T01:30:00.250+02:00", JAVA) == dt.date(2024, 7, 12)


def test_unquoted_z_accepts_both_the_literal_and_an_offset() -> None:
    pattern = compile_pattern("yyyy-MM-dd'T'HH:mm:ss.fffZ")
    assert pattern.parse("2024-07-12T10:00:00.000Z").tzinfo == UTC
    assert pattern.parse("2024-07-12T10:00:00.000+0100").utcoffset() == dt.timedelta(hours=1)


def test_other_pattern_tokens() -> None:
    assert compile_pattern("d MMM yyyy h:mm tt").parse("5 Jan 2025 3:07 PM") == dt.datetime(2025, 1, 5, 15, 7)
    assert compile_pattern("yyyyMMdd'T'HHmmss").parse("20250105T030700") == dt.datetime(2025, 1, 5, 3, 7)
    assert compile_pattern("'Day' dd 'of' MM, yyyy").parse("Day 09 of 11, 2024") == dt.datetime(2024, 11, 9)


def test_values_that_do_not_follow_the_announced_format_are_problems() -> None:
    with pytest.raises(ValueProblem, match="dueDate"):
        parse_date("2024-07-12", BRITISH, field="dueDate")
    with pytest.raises(ValueProblem, match="updatedDate"):
        parse_timestamp("2024-07-12T10:20:30Z", BRITISH, field="updatedDate")
    with pytest.raises(ValueProblem):
        parse_date("31/02/2024", BRITISH)
    with pytest.raises(ValueProblem):
        compile_pattern("HH:mm")


def test_empty_dates_are_null() -> None:
    assert parse_date(None, DOCUMENTED) is None
    assert parse_timestamp("", DOCUMENTED) is None


def test_formats_come_from_content_metadata_then_top_level_metadata() -> None:
    assert formats_from({"content": {"metadata": {"dateFormat": "dd/MM/yyyy"}}}).date == "dd/MM/yyyy"
    top = formats_from({"content": {"data": {}}, "metadata": {"dateFormat": "d/M/yyyy", "dateTimeFormat": "x"}})
    assert top == Formats("d/M/yyyy", "x")
    both = {"content": {"metadata": {"dateFormat": "A"}}, "metadata": {"dateFormat": "B", "dateTimeFormat": "C"}}
    assert formats_from(both) == Formats("A", "C")
    assert formats_from({"content": {"data": {}}}) == DOCUMENTED
    assert formats_from(None) == DOCUMENTED


# --- status -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("external", "balance", "expected"),
    [
        (None, "100.00", "open"),
        ("AUTHORISED", "100.00", "open"),
        (None, "40.00", "partially_paid"),
        (None, "0.01", "partially_paid"),
        ("PAID", "0", "paid"),
        (None, "0.00", "paid"),
        ("VOIDED", "0.00", "void"),
        ("voided", "100.00", "void"),
        ("DELETED", "100.00", "void"),
        ("DRAFT", "100.00", "draft"),
        ("SUBMITTED", "100.00", "draft"),
    ],
)
def test_status_is_derived_from_balance_and_accounting_status(
    external: str | None, balance: str, expected: str
) -> None:
    raw = {"externalProviderStatus": external}
    assert derive_status(raw, Decimal("100.00"), Decimal(balance)) == expected


def test_status_without_a_balance_is_a_problem_unless_void() -> None:
    with pytest.raises(ValueProblem, match="balanceDue"):
        derive_status({}, Decimal(100), None)
    assert derive_status({"externalProviderStatus": "VOIDED"}, Decimal(100), None) == "void"


# --- invoices -----------------------------------------------------------------------------------


def test_invoice_columns() -> None:
    raw = invoice_payload()
    original = copy.deepcopy(raw)
    mapped = map_invoice(raw, account="org-1", client_name="Harbour Lane", formats=DOCUMENTED)
    assert raw == original
    row = mapped.invoice
    assert row == {
        "provider": "flowpayroll",
        "account": "org-1",
        "invoice_id": "inv-1",
        "client_id": "cli-1",
        "client_name": "Harbour Lane",
        "number": "INV-00042",
        "document_type": "invoice",
        "status": "partially_paid",
        "provider_status": "AUTHORISED",
        "is_archived": False,
        "issue_date": dt.date(2024, 7, 12),
        "due_date": dt.date(2024, 8, 11),
        "currency": "GBP",
        "subtotal": Decimal("1028.80"),
        "discount_total": Decimal(0),
        "tax_total": Decimal("205.76"),
        "withholding_total": Decimal(0),
        "shipping_total": Decimal(0),
        "total": Decimal("1234.56"),
        "balance_due": Decimal("1134.56"),
        "created_at": dt.datetime(2024, 7, 12, 9, 0, 0, 123000, tzinfo=UTC),
        "updated_at": dt.datetime(2024, 7, 21, 16, 45, 10, 500000, tzinfo=UTC),
        "paid_at": None,
        "voided_at": None,
        "reference": "Week 28",
        "notes": None,
    }
    assert not total_mismatch(row)


def test_money_stays_exact_decimal() -> None:
    row = map_invoice(invoice_payload(), account="a", client_name=None, formats=DOCUMENTED).invoice
    for column in ("subtotal", "tax_total", "total", "balance_due"):
        assert isinstance(row[column], Decimal)
    assert str(row["subtotal"]) == "1028.80"


def test_download_urls_stay_in_raw_only() -> None:
    mapped = map_invoice(invoice_payload(), account="a", client_name=None, formats=DOCUMENTED)
    for row in [mapped.invoice, *mapped.items]:
        leaked = [k for k, v in row.items() if "X-Amz-Signature" in str(v)]
        assert leaked == []  # a signed link stays in the payload (`raw`) only


def test_lines() -> None:
    mapped = map_invoice(invoice_payload(), account="org-1", client_name=None, formats=DOCUMENTED)
    first, second = mapped.items
    assert first == {
        "provider": "flowpayroll",
        "account": "org-1",
        "invoice_id": "inv-1",
        "line_number": 1,
        "item_id": "li-1",
        "name": None,
        "description": "Basic Pay",
        "quantity": Decimal("37.5"),
        "unit": None,
        "unit_price": Decimal("20.00"),
        "discount_amount": Decimal(0),
        "tax_rate": None,
        "tax_amount": Decimal("150.00"),
        "subtotal": Decimal("750.00"),
        "total": Decimal("900.00"),
    }
    assert (second["line_number"], second["quantity"], second["total"]) == (2, Decimal(8), Decimal("334.56"))


def test_tax_inclusive_lines_hold_their_tax() -> None:
    raw = invoice_payload(lineAmountTypes="Inclusive")
    raw["lineItems"] = [{"id": "x", "quantity": 1, "unitAmount": 120, "lineAmount": 120, "taxAmount": 20}]
    (line,) = map_invoice(raw, account="a", client_name=None, formats=DOCUMENTED).items
    assert (line["subtotal"], line["tax_amount"], line["total"]) == (Decimal(100), Decimal(20), Decimal(120))


def test_line_without_tax_amount_has_unknown_total() -> None:
    raw = invoice_payload()
    raw["lineItems"] = [{"id": "x", "quantity": 2, "unitAmount": 5, "lineAmount": 10}]
    (line,) = map_invoice(raw, account="a", client_name=None, formats=DOCUMENTED).items
    assert (line["subtotal"], line["tax_amount"], line["total"]) == (Decimal(10), None, None)


def test_invoice_without_lines_has_none() -> None:
    assert map_invoice(invoice_payload(lineItems=None), account="a", client_name=None, formats=DOCUMENTED).items == []


def test_dates_follow_the_announced_formats() -> None:
    raw = invoice_payload(
        date="12/07/2024", dueDate="11/08/2024", createdDate="12/07/2024 09:00:00", updatedDate="21/07/2024 16:45:10"
    )
    row = map_invoice(raw, account="a", client_name=None, formats=BRITISH).invoice
    assert (row["issue_date"], row["due_date"]) == (dt.date(2024, 7, 12), dt.date(2024, 8, 11))
    assert row["updated_at"] == dt.datetime(2024, 7, 21, 16, 45, 10, tzinfo=UTC)
    with pytest.raises(ValueProblem):
        map_invoice(invoice_payload(), account="a", client_name=None, formats=BRITISH)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"currencyCode": "Pound"}, "currencyCode"),
        ({"currencyCode": None}, "currencyCode"),
        ({"amount": None}, "amount"),
        ({"subTotal": "n/a"}, "subTotal"),
        ({"balanceDue": None}, "balanceDue"),
        ({"id": None}, "id"),
        ({"date": "July 12"}, "date"),
    ],
)
def test_unmappable_invoices_raise(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueProblem, match=message):
        map_invoice(invoice_payload(**changes), account="a", client_name=None, formats=DOCUMENTED)


def test_total_mismatch_is_detected_and_total_kept() -> None:
    row = map_invoice(
        invoice_payload(amount=Decimal("1300.00")), account="a", client_name=None, formats=DOCUMENTED
    ).invoice
    assert row["total"] == Decimal("1300.00")
    assert total_mismatch(row)


# --- clients ------------------------------------------------------------------------------------


def test_client_columns() -> None:
    raw = loads("""{
      "id": "cli-1", "name": "Harbour Lane", "organisationId": "org-1", "vatNumber": "GB123456789",
      "createdDate": "2023-01-05T08:00:00.000Z", "updatedDate": "2023-02-01T12:30:00.000Z",
      "contacts": [{"firstName": "Switch", "email": null, "includeInEmails": false},
                   {"firstName": "Ops", "email": "ops@hl.example", "includeInEmails": false},
                   {"firstName": "Ava", "email": "ava@hl.example", "includeInEmails": true}],
      "billingAddress": {"countryCode": "GB"}, "physicalAddress": {"countryCode": "IE"}
    }""")
    row = map_client(raw, account="org-1", formats=DOCUMENTED)
    assert row == {
        "provider": "flowpayroll",
        "account": "org-1",
        "client_id": "cli-1",
        "name": "Harbour Lane",
        "email": "ava@hl.example",
        "country": "GB",
        "tax_id": "GB123456789",
        "created_at": dt.datetime(2023, 1, 5, 8, tzinfo=UTC),
        "updated_at": dt.datetime(2023, 2, 1, 12, 30, tzinfo=UTC),
    }


def test_client_fallbacks() -> None:
    raw = {
        "id": 7,
        "name": "X",
        "contacts": [{"email": "a@x.example"}],
        "billingAddress": None,
        "physicalAddress": {"countryCode": "IE"},
        "vatNumber": "",
    }
    row = map_client(raw, account="a", formats=DOCUMENTED)
    assert (row["client_id"], row["email"], row["country"], row["tax_id"]) == ("7", "a@x.example", "IE", None)
    with pytest.raises(ValueProblem):
        map_client({"name": "no id"}, account="a", formats=DOCUMENTED)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"message": {"text": "Operation failed", "token": "operationFailed", "tokenArguments": []}},
            "[operationFailed] Operation failed",
        ),
        (
            {
                "errors": [{"field": "clientId", "reasonText": "Client not found", "reasonId": "notFound"}],
                "message": {"text": "Not found", "textId": "notFound"},
            },
            "[notFound] Not found; clientId: Client not found",
        ),
        (
            {
                "validationIssues": [{"field": "pageSize", "reason": "too large", "reasonToken": "max"}],
                "messageToken": "validationFailed",
            },
            "pageSize: too large",
        ),
        ({"error": "invalid_client", "error_description": "bad secret"}, "invalid_client bad secret"),
        ({"content": {}}, None),
    ],
)
def test_each_documented_error_envelope_is_read(body, message):
    assert error_message(body) == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-07T05:31:56.123Z", dt.datetime(2023, 11, 7, 5, 31, 56, 123000, tzinfo=UTC)),
        ("2023-11-07T05:31:56Z", dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
        ("2023-11-07T05:31:56.1Z", dt.datetime(2023, 11, 7, 5, 31, 56, 100000, tzinfo=UTC)),
        ("2023-11-07T05:31:56.1234567Z", dt.datetime(2023, 11, 7, 5, 31, 56, 123456, tzinfo=UTC)),
        ("2023-11-07T05:31:56+00:00", dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
        ("2023-11-07T06:31:56.500+01:00", dt.datetime(2023, 11, 7, 5, 31, 56, 500000, tzinfo=UTC)),
        ("2023-11-07T00:31:56-05:00", dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
        ("2023-11-07T06:31:56+0100", dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)),
    ],
)
def test_the_announced_timestamp_format_reads_every_form_it_is_met_with(text: str, expected: dt.datetime) -> None:
    # Documented format yyyy-MM-dd'T'HH:mm:ss.fffZ (and the same without quotes around T).
    assert parse_timestamp(text, DOCUMENTED) == expected
    assert parse_timestamp(text, Formats("yyyy-MM-dd", "yyyy-MM-ddTHH:mm:ss.fffZ")) == expected


@pytest.mark.parametrize(
    "text", ["2023-11-07T05:31:56.Z", "2023-11-07T05:31Z", "2023-11-07 05:31:56Z", "2023-11-07T05:31:56.1234567890Z"]
)
def test_timestamps_that_are_not_of_the_announced_form_are_still_problems(text: str) -> None:
    with pytest.raises(ValueProblem, match="updatedDate"):
        parse_timestamp(text, DOCUMENTED, field="updatedDate")


def test_a_date_written_as_a_timestamp_without_fraction_keeps_its_own_day() -> None:
    assert parse_date("2023-11-07T23:30:00-02:00", DOCUMENTED) == dt.date(2023, 11, 7)


@pytest.mark.parametrize("code", ["ESC", "LEI", "XYZ", "GBPX"])
def test_currency_codes_must_be_on_the_iso_list(code: str) -> None:
    with pytest.raises(ValueProblem, match=f"currencyCode: '{code}' is not"):
        map_invoice(invoice_payload(currencyCode=code), account="a", client_name=None, formats=DOCUMENTED)
    assert (
        map_invoice(invoice_payload(currencyCode="gbp"), account="a", client_name=None, formats=DOCUMENTED).invoice[
            "currency"
        ]
        == "GBP"
    )
