"""The Python reference of the reporting-currency conversion (docs/canonical-model.md,
"Reporting currency")."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from pipelines.fx import Rates, convert, minor_unit

D = dt.date
RATES = Rates.of(
    [
        (D(2026, 10, 29), "USD", Decimal("1.1130")),
        (D(2026, 10, 30), "USD", Decimal("1.1172")),
        (D(2026, 10, 30), "JPY", Decimal("175.68")),
        (D(2026, 10, 30), "BHD", Decimal("0.4212")),
        (D(2026, 10, 30), "GBP", Decimal("0.8338")),
    ]
)


@pytest.mark.parametrize(
    ("code", "exponent"), [("EUR", 2), ("USD", 2), ("JPY", 0), ("ISK", 0), ("BHD", 3), ("KWD", 3), ("CLF", 4)]
)
def test_minor_units_are_iso_4217s(code: str, exponent: int) -> None:
    assert minor_unit(code) == exponent


@pytest.mark.parametrize(("code", "why"), [("XAU", "no minor unit"), ("HRK", "not a current"), ("EURO", "not a")])
def test_a_code_without_a_minor_unit_cannot_be_reported_in(code: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        minor_unit(code)


def test_the_latest_rate_on_or_before_the_day_at_most_seven_days_old() -> None:
    assert RATES.rate("USD", D(2026, 10, 29)) == (D(2026, 10, 29), Decimal("1.1130"))
    assert RATES.rate("USD", D(2026, 11, 1)) == (D(2026, 10, 30), Decimal("1.1172"))  # a Sunday
    assert RATES.rate("USD", D(2026, 11, 6)) == (D(2026, 10, 30), Decimal("1.1172"))  # 7 days old
    assert RATES.rate("USD", D(2026, 11, 7)) is None  # 8 days: too old
    assert RATES.rate("USD", D(2026, 10, 28)) is None  # before any rate
    assert RATES.rate("AED", D(2026, 10, 30)) is None  # never published
    assert RATES.rate("EUR", D(1990, 1, 1)) == (D(1990, 1, 1), Decimal(1))


def test_conversion_through_the_euro_rounded_half_even_to_the_minor_unit() -> None:
    day = D(2026, 10, 30)
    assert convert(Decimal("100"), "USD", "EUR", day, RATES) == Decimal("89.51")  # 89.5095...
    assert convert(Decimal("100"), "EUR", "JPY", day, RATES) == Decimal("17568")
    assert convert(Decimal("100"), "USD", "JPY", day, RATES) == Decimal("15725")  # 15725.02...
    assert convert(Decimal("100"), "GBP", "BHD", day, RATES) == Decimal("50.516")  # 50.5157...
    assert str(convert(Decimal("100"), "USD", "BHD", day, RATES)) == "37.701"
    assert str(convert(Decimal("0"), "USD", "EUR", day, RATES)) == "0.00"


def test_ties_go_to_the_even_neighbour_in_both_signs() -> None:
    day, rates = D(2026, 10, 30), Rates.of([(D(2026, 10, 30), "XTS", Decimal("2"))])
    # At 2 XTS per euro, 0.25 XTS is 0.125 EUR: exactly half a cent.
    assert convert(Decimal("0.25"), "XTS", "EUR", day, rates) == Decimal("0.12")
    assert convert(Decimal("0.75"), "XTS", "EUR", day, rates) == Decimal("0.38")
    assert convert(Decimal("-0.25"), "XTS", "EUR", day, rates) == Decimal("-0.12")
    assert convert(Decimal("-0.75"), "XTS", "EUR", day, rates) == Decimal("-0.38")
    assert convert(Decimal("2.5"), "JPY", "JPY", day, RATES) == Decimal("2")
    assert convert(Decimal("3.5"), "JPY", "JPY", day, RATES) == Decimal("4")


def test_no_rate_converts_to_none_never_to_a_guess() -> None:
    assert convert(Decimal("10"), "AED", "EUR", D(2026, 10, 30), RATES) is None
    assert convert(Decimal("10"), "USD", "EUR", D(2026, 12, 7), RATES) is None
    assert convert(Decimal("10"), "EUR", "USD", D(2026, 12, 7), RATES) is None
    # The reporting currency itself needs no rate, only its minor unit.
    assert convert(Decimal("10.005"), "USD", "USD", D(2030, 1, 1), RATES) == Decimal("10.00")


def test_the_rate_day_is_the_older_of_the_two() -> None:
    rates = Rates.of([(D(2026, 10, 29), "USD", Decimal("1.1")), (D(2026, 10, 30), "JPY", Decimal("175"))])
    assert rates.rate_date("USD", "JPY", D(2026, 11, 2)) == D(2026, 10, 29)
    assert rates.rate_date("EUR", "JPY", D(2026, 11, 2)) == D(2026, 10, 30)
    assert rates.rate_date("JPY", "JPY", D(2026, 11, 2)) is None
    assert rates.rate_date("AED", "JPY", D(2026, 11, 2)) is None
