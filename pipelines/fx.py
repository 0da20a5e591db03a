"""Exact conversion to the reporting currency: the Python reference the SQL follows
(docs/canonical-model.md, "Reporting currency"; docs/reporting-currency.md).

- The rate of a currency for a day is the latest published on or before it, at most
  `MAX_RATE_AGE_DAYS` days old; older or none: no rate, and the amount converts to None.
- EUR's rate is 1 on every day: the ECB's rates are units per euro.
- `amount × per_eur(reporting) ÷ per_eur(currency)` is computed as an exact fraction and
  rounded once, half to even, to the reporting currency's ISO 4217 minor unit.
- An amount already in the reporting currency needs no rate: it is only rounded to the minor unit.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import NamedTuple

import iso4217

EUR = "EUR"
MAX_RATE_AGE_DAYS = 7


@cache
def minor_unit(code: str) -> int:
    """The ISO 4217 minor unit (exponent) of `code`: 2 for EUR, 0 for JPY, 3 for BHD and KWD.

    The table is ISO 4217 List One as the `iso4217` package ships it (the ISO 4217 maintenance
    agency's own XML, `table.xml`, with its publication date as the package's version).

    Raises:
        ValueError: `code` is not a current ISO 4217 code, or one without a minor unit (gold,
            SDR: `N.A.` in the list); such a code cannot be a reporting currency.
    """
    try:
        exponent = iso4217.Currency(code.upper()).exponent
    except ValueError:
        raise ValueError(f"{code!r} is not a current ISO 4217 currency code") from None
    if exponent is None:
        raise ValueError(f"{code} has no minor unit in ISO 4217: it cannot be a reporting currency")
    return int(exponent)


class RateRow(NamedTuple):
    """One known rate: units of `currency` per euro on `rate_date` (a row of `fx_rates`)."""

    rate_date: dt.date
    currency: str
    per_eur: Decimal


class Applied(NamedTuple):
    """A rate as applied to a day: the day it was published and its value."""

    rate_date: dt.date
    per_eur: Decimal


def round_half_even(value: Fraction, exponent: int) -> Decimal:
    """`value` rounded half to even to `exponent` decimals, exactly (`round` of a `Fraction` is
    half-even and exact)."""
    units = round(value * 10**exponent)
    # Built from its digits: exact, whatever the decimal context, and `0.00` rather than `0E-2`.
    return Decimal(f"{units}e-{exponent}")


@dataclass
class Rates:
    """Rates per currency, sorted by day, for lookups and conversions."""

    _days: dict[str, list[dt.date]] = field(default_factory=dict)
    _values: dict[str, list[Decimal]] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Iterable[tuple[dt.date, str, Decimal] | RateRow]) -> Rates:
        """The rates of `rows` (`(rate_date, currency, per_eur)`, in any order, one per day and currency)."""
        ordered = sorted((day, code, value) for day, code, value, *_ in rows)
        rates = cls()
        for day, code, value in ordered:
            rates._days.setdefault(code, []).append(day)
            rates._values.setdefault(code, []).append(value)
        return rates

    def rate(self, currency: str, on: dt.date) -> Applied | None:
        """The rate of `currency` for the day `on`: the latest published on or before it, at
        most `MAX_RATE_AGE_DAYS` days old; None when there is none. EUR: 1, published that day."""
        if currency == EUR:
            return Applied(on, Decimal(1))
        days = self._days.get(currency, [])
        at = bisect.bisect_right(days, on) - 1
        if at < 0 or (on - days[at]).days > MAX_RATE_AGE_DAYS:
            return None
        return Applied(days[at], self._values[currency][at])

    def convert(self, amount: Decimal, currency: str, reporting: str, on: dt.date) -> Decimal | None:
        """`amount` in `currency` as `reporting` at the rates of `on`, or None without a rate.
        See `convert`."""
        return convert(amount, currency, reporting, on, self)

    def rate_date(self, currency: str, reporting: str, on: dt.date) -> dt.date | None:
        """The day of the rate a conversion on `on` uses: the older of the two currencies' rates
        (EUR's needs none); None when no rate is needed (the same currency) or none is known."""
        if currency == reporting:
            return None
        applied = [self.rate(c, on) for c in (currency, reporting) if c != EUR]
        if any(a is None for a in applied):
            return None
        return min(a.rate_date for a in applied if a is not None)


def convert(amount: Decimal, currency: str, reporting: str, on: dt.date, rates: Rates) -> Decimal | None:
    """`amount` in `currency` converted to `reporting` at the rates of the day `on`, exactly.

    `amount × per_eur(reporting) ÷ per_eur(currency)`, with each rate the latest on or before
    `on` and at most `MAX_RATE_AGE_DAYS` old, computed as an exact fraction and rounded once, half
    to even, to the minor unit of `reporting`. A negative amount (a credit note) rounds the same
    way as its positive counterpart, mirrored.

    Returns:
        The amount in `reporting`, with exactly its minor unit's decimals; None when either rate
        is missing or too old (the amount is then counted as unconverted, never guessed).

    Raises:
        ValueError: `reporting` has no ISO 4217 minor unit.
    """
    exponent = minor_unit(reporting)
    if currency == reporting:
        return round_half_even(Fraction(amount), exponent)
    source, target = rates.rate(currency, on), rates.rate(reporting, on)
    if source is None or target is None:
        return None
    return round_half_even(Fraction(amount) * Fraction(target.per_eur) / Fraction(source.per_eur), exponent)
