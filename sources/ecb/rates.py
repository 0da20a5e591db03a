"""The ECB's reference-rate files read exactly: every rate is the `Decimal` of its own text.

Layouts (as the ECB publishes them, https://www.ecb.europa.eu/stats/eurofxref/):

- `eurofxref-hist.csv` (in `eurofxref-hist.zip`): a header `Date,USD,JPY,...,` (with a trailing
  comma), then one line per business day, newest first: `2026-10-30,1.1172,175.68,N/A,...,`.
  `N/A` marks a currency not published that day (withdrawn, suspended or not yet quoted).
- `eurofxref.csv` (in `eurofxref.zip`): the same for one day, written `Date, USD, ...` with a space
  after each comma and the day as `30 October 2026`.
- `eurofxref-daily.xml`, `eurofxref-hist-90d.xml`, `eurofxref-hist.xml`: a gesmes envelope
  holding `<Cube time="2026-10-30"><Cube currency="USD" rate="1.1172"/>...</Cube>` per day.

A rate is units of the currency for one euro, a positive decimal number written with a point.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import IO, NamedTuple

from sources.ecb.settings import ECB, PER_EUR_PRECISION, PER_EUR_SCALE

_INTEGER_DIGITS = PER_EUR_PRECISION - PER_EUR_SCALE
# Digits, an optional point and decimals: no sign, exponent, grouping or comma.
_RATE = re.compile(r"(\d+)(?:\.(\d+))?")
_CODE = re.compile(r"[A-Z]{3}")
_MISSING = ("", "N/A")
# The one-day CSV writes `30 October 2026`, in English whatever the reader's locale.
_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september")
_MONTHS = {name: n for n, name in enumerate((*_MONTH_NAMES, "october", "november", "december"), start=1)}
_EUROFXREF = "{http://www.ecb.int/vocabulary/2002-08-01/eurofxref}Cube"


class Rate(NamedTuple):
    """One row of `fx_rates`: units of `currency` for one euro on `rate_date`, from `source`."""

    rate_date: dt.date
    currency: str
    per_eur: Decimal
    source: str


class RateFormatError(ValueError):
    """A file is not in the layout it should be in, or holds a value that is not a rate.

    Attributes:
        line: the 1-based line of the offending value (None where the layout has no lines).
        column: the 1-based column (None when the whole line or file is wrong).
        reason: what is wrong, without the location.
    """

    def __init__(self, reason: str, line: int | None = None, column: int | None = None) -> None:
        where = ", ".join(p for p in (f"line {line}" if line else "", f"column {column}" if column else "") if p)
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason, self.line, self.column = reason, line, column


def parse_rate(text: str) -> Decimal:
    """The rate `text` stands for, exactly: a positive number that fits DECIMAL(16, 8).

    Raises:
        ValueError: anything else (a sign, an exponent, a comma, zero, too many digits); the
            message says which.
    """
    match = _RATE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a rate: units per euro are written like 1.0850")
    integer, decimals = match.group(1).lstrip("0"), match.group(2) or ""
    if len(integer) > _INTEGER_DIGITS or len(decimals.rstrip("0")) > PER_EUR_SCALE:
        raise ValueError(
            f"{text!r} does not fit DECIMAL({PER_EUR_PRECISION}, {PER_EUR_SCALE}): "
            f"at most {_INTEGER_DIGITS} digits before the point and {PER_EUR_SCALE} after it"
        )
    value = Decimal(text)
    if not value:
        raise ValueError(f"{text!r} is not a rate: a euro is worth more than nothing")
    return value


def parse_day(text: str) -> dt.date:
    """A day as the ECB writes it: `2026-10-30`, or `30 October 2026` in the one-day CSV.

    Raises:
        ValueError: any other form.
    """
    try:
        if "-" in text:
            return dt.date.fromisoformat(text)
        day, month, year = text.split()
        return dt.date(int(year), _MONTHS[month.lower()], int(day))
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{text!r} is not a date (write 2026-10-30)") from exc


def _header(row: list[str], check_code: Callable[[str], str | None] | None) -> list[str]:
    """The currency codes of a CSV header row (its first cell is `Date`; a trailing empty cell,
    which the ECB writes, is dropped).

    Raises:
        RateFormatError: not the ECB's header, a cell that is not a currency code (or that
            `check_code` refuses), or a code twice.
    """
    cells = [c.strip() for c in row]
    if cells and cells[-1] == "":
        cells.pop()
    if not cells or cells[0].lstrip("\ufeff").lower() != "date":
        raise RateFormatError("the header must start with Date (Date,USD,JPY,...)", 1, 1)
    codes = cells[1:]
    seen: set[str] = set()
    for column, code in enumerate(codes, start=2):
        if not _CODE.fullmatch(code):
            raise RateFormatError(f"{code!r} is not a currency code (three capital letters)", 1, column)
        refused = check_code(code) if check_code else None
        if refused:
            raise RateFormatError(refused, 1, column)
        if code in seen:
            raise RateFormatError(f"{code} appears twice in the header", 1, column)
        seen.add(code)
    return codes


def csv_rates(
    lines: Iterable[str], source: str = ECB, check_code: Callable[[str], str | None] | None = None
) -> Iterator[Rate]:
    """The rates of a CSV in the ECB's layout (`Date,USD,JPY,...`), line by line, in file order.

    Blank lines are skipped; `N/A` or an empty cell is no rate. Only one line and the days seen
    are held, so the full history streams in small memory.

    Args:
        lines: the file's lines.
        source: the `source` of every row.
        check_code: says why a header's currency code is refused (None to accept it).

    Raises:
        RateFormatError: the layout or a value is wrong, or a day is on two lines; it names the
            line and column.
    """
    reader = csv.reader(lines, skipinitialspace=True)
    codes: list[str] | None = None
    days: dict[dt.date, int] = {}
    for row in reader:
        line = reader.line_num
        if codes is None:
            codes = _header(row, check_code)
            continue
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if len(cells) == len(codes) + 2 and cells[-1] == "":
            cells.pop()  # the ECB's trailing comma
        if len(cells) != len(codes) + 1:
            raise RateFormatError(f"{len(cells)} cells where the header has {len(codes) + 1}", line)
        try:
            day = parse_day(cells[0])
        except ValueError as exc:
            raise RateFormatError(str(exc), line, 1) from None
        if day in days:
            raise RateFormatError(f"{day} is also on line {days[day]}", line, 1)
        days[day] = line
        for column, (code, text) in enumerate(zip(codes, cells[1:], strict=True), start=2):
            if text in _MISSING:
                continue
            try:
                yield Rate(day, code, parse_rate(text), source)
            except ValueError as exc:
                raise RateFormatError(f"{code}: {exc}", line, column) from None
    if codes is None:
        raise RateFormatError("the file is empty: the header Date,USD,JPY,... is missing")


def xml_rates(stream: IO[bytes]) -> Iterator[Rate]:
    """The rates of one of the ECB's XML files (daily, 90 days or full history), in file order.

    Parsed incrementally: each day's element is cleared once read.

    Raises:
        RateFormatError: not well-formed, or a day or rate that cannot be read.
    """
    day: dt.date | None = None
    try:
        for event, element in ET.iterparse(stream, events=("start", "end")):
            if element.tag != _EUROFXREF:
                continue
            if event == "start" and "time" in element.attrib:
                day = parse_day(element.attrib["time"])
            elif event == "end" and "currency" in element.attrib:
                code, text = element.attrib["currency"], element.attrib.get("rate", "")
                if day is None or not _CODE.fullmatch(code):
                    raise RateFormatError(f"a rate for {code!r} outside a dated Cube")
                yield Rate(day, code, parse_rate(text), ECB)
            elif event == "end" and "time" in element.attrib:
                element.clear()
    except ET.ParseError as exc:
        raise RateFormatError(f"not the ECB's XML: {exc}") from None
    except ValueError as exc:
        if isinstance(exc, RateFormatError):
            raise
        raise RateFormatError(str(exc)) from None
